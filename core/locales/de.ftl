# German.

welcome = Willkommen! /balance zeigt dein Guthaben, /deposit lädt Telegram Stars auf, /subscribe kauft ein Abo, /help listet alles.
help =
    /start — starten
    /balance — dein Guthaben
    /history — deine Buchungen
    /deposit 250 — Telegram Stars einzahlen
    /deposit 10 USDT — USDT über @CryptoBot einzahlen
    /subscribe — ein Abo kaufen
    /referral — dein Empfehlungslink und deine Einnahmen
    /withdraw — auf dein Wallet auszahlen
    /cancel — Begonnenes abbrechen
    /language — Sprache ändern
    /paysupport — Hilfe zu einer Zahlung
    /support — an unser Team schreiben
    /notifications — Neuigkeiten und Erinnerungen an oder aus
    /terms — die Bedingungen
    /help — diese Liste
banned = Dein Konto ist leider gesperrt. Wenn du das für einen Fehler hältst, wende dich an den Support.
balance-zero = Dein Guthaben ist 0.
balance-header = Dein Guthaben:
deposit-usage = { $error }. Zum Beispiel: /deposit 250
deposit-limits = Einzahlungen von { $min } bis { $max }, zum Beispiel /deposit 250.
invoice-title = Einzahlung { $amount }
invoice-description = Fügt deinem Guthaben { $amount } hinzu.
payment-received = Zahlung erhalten: { $amount }. Sie erscheint gleich in /balance.
not-understood = Das habe ich nicht verstanden. /help zeigt, was ich kann.
invoice-not-yours = Diese Rechnung ist nicht deine.
only-stars = Es werden nur Telegram Stars angenommen.
outside-limits = Dieser Betrag liegt außerhalb der Einzahlungsgrenzen.
choose-language = Wähle deine Sprache:
language-chosen = Sprache: Deutsch.
history-empty = Noch keine Buchungen.
history-page = Verlauf, Seite { $page }:
history-line = { $date } · { $kind } · { $change }
kind-deposit = Einzahlung
kind-subscription = Abo
kind-referral-commission = Empfehlungsprovision
kind-withdrawal = Auszahlung
kind-withdrawal-returned = Auszahlung zurückgebucht
kind-payout = Auszahlung gesendet
kind-adjustment = Korrektur
kind-refund = Zahlung erstattet
confirm = Bestätigen
cancel = Abbrechen
cancelled = Abgebrochen.
expired = Diese Anfrage ist abgelaufen. Bitte fang neu an.
plans = Wähle einen Tarif:
plan-button = { $plan }: { $days ->
        [one] { $days } Tag
       *[other] { $days } Tage
    }, { $price }
subscribed-until = Dein Abo läuft bis { $until }.
confirm-purchase = { $plan } ({ $days ->
        [one] { $days } Tag
       *[other] { $days } Tage
    }) für { $price } vom Guthaben kaufen?
subscribed = Erledigt: { $plan } bis { $until }.
not-enough-balance = Guthaben reicht nicht: { $amount } nötig. /deposit lädt auf.
unknown-plan = Diesen Tarif gibt es nicht mehr. /subscribe zeigt die aktuellen.
referral-info =
    Dein Empfehlungslink: { $link }
    Eingeladen: { $count ->
        [one] { $count } Person
       *[other] { $count } Personen
    }
    Verdient: { $earned }
    Du erhältst { $percent } % jedes Abos, das deine Empfohlenen kaufen.
referral-earned = Du hast { $amount } verdient: jemand, den du eingeladen hast, hat ein Abo gekauft.
withdraw-not-enough = Auszahlungen ab { $min } (Gebühr { $fee }); dein verfügbares Guthaben ist { $available }.
withdraw-ask-amount = Wie viel möchtest du auszahlen? Von { $min } bis { $max }; verfügbar { $available }, Gebühr { $fee }. /cancel bricht ab.
withdraw-bad-amount = Dieser Betrag geht nicht: { $error }. Sende einen anderen, oder /cancel.
withdraw-ask-address = Sende die { $format }-Adresse, an die { $amount } gehen sollen.
withdraw-bad-address = Das ist keine { $format }-Adresse. Sende sie noch einmal, oder /cancel.
withdraw-confirm = { $amount } (Gebühr { $fee }) an { $address } auszahlen?
withdraw-approved = Auszahlung von { $amount } genehmigt; sie ist unterwegs.
withdraw-pending-review = Auszahlung von { $amount } beantragt; der Betrag ist bis zur Prüfung zurückgelegt.
withdraw-refused = Die Auszahlung von { $amount } wurde abgelehnt: { $reason }.
withdraw-status = Deine Auszahlung von { $amount } ist { $status ->
        [requested] in Prüfung
        [approved] genehmigt
        [processing] in Bearbeitung
        [sent] gesendet
        [releasing] auf dem Weg zurück ins Guthaben
        [released] zurück im Guthaben
        [rejected] abgelehnt
       *[other] { $status }
    }.
subscription-ends-soon = Dein Abo endet am { $date }. /subscribe verlängert es.
subscription-expired = Dein Abo ist abgelaufen. /subscribe erneuert es.
withdrawal-sent = Deine Auszahlung von { $amount } wurde gesendet.
withdrawal-returned = Deine Auszahlung von { $amount } ist nicht durchgegangen; das Geld ist zurück in deinem Guthaben.
crypto-invoice = Rechnung über { $amount }: bezahle sie in @CryptoBot mit dem Knopf unten. Dein Guthaben wird nach der Zahlung gutgeschrieben.
pay-button = { $amount } zahlen
crypto-refused = Der Zahlungsdienst hat diese Rechnung abgelehnt ({ $error }). Versuche einen anderen Betrag.
pay-support = Fragen zu einer Zahlung: beschreibe in deiner nächsten Nachricht, was passiert ist; unser Team antwortet hier. Deine Nutzer-ID ist { $user_id }; du kannst auch an { $contact } schreiben. Stars-Erstattungen werden auch hier bearbeitet. /cancel bricht ab.
terms = Bedingungen: Einzahlungen in Telegram Stars bezahlen Abos in diesem Bot und werden nur über /paysupport erstattet. USDT-Einzahlungen und -Auszahlungen laufen über @CryptoBot. Auszahlungen werden geprüft und können zur Prüfung zurückgehalten werden. Vollständige Bedingungen: { $url }
answered-in-private = Ich habe dir in unserem privaten Chat geantwortet.
open-privately = Dein Geld wird in Gruppen nicht gezeigt: öffne einen privaten Chat mit @{ $bot } und sende den Befehl dort.
withdraw-choose-currency = Von welchem Guthaben möchtest du auszahlen?
amount-empty = gib einen Betrag ein, zum Beispiel 12,5
amount-negative = der Betrag darf nicht negativ sein
amount-not-a-number = „{ $input }“ ist kein Betrag: nutze Ziffern, zum Beispiel 12,5
amount-too-many-decimals = { $currency } erlaubt { $max ->
        [0] nur ganze Beträge
        [one] höchstens { $max } Nachkommastelle
       *[other] höchstens { $max } Nachkommastellen
    }
amount-too-large = der Betrag ist zu groß: höchstens { $max }
amount-not-positive = der Betrag muss größer als 0 sein
asset-not-offered = { $currency } wird nicht angeboten
withdraw-below-min = die Mindestauszahlung ist { $min }
withdraw-above-max = die Höchstauszahlung ist { $max }
withdraw-over-daily-limit = über dem Tageslimit: heute noch { $left }
withdraw-short-of-fee = { $available } verfügbar, { $needed } mit Gebühr nötig
support-started = Schreibe deine Frage in deine nächste Nachricht; sie geht an unser Team, das hier antwortet. /cancel bricht ab.
support-sent = An unser Team gesendet. Die Antwort kommt hier.
support-answer = Support: { $text }
support-closed = Deine Support-Anfrage ist geschlossen. /support öffnet sie wieder.
notifications =
    Was darf ich dir ungefragt schicken?
    Neuigkeiten und Angebote: { $broadcasts ->
        [on] an
       *[off] aus
    }
    Abo-Erinnerungen: { $reminders ->
        [on] an
       *[off] aus
    }
notification-button = { $kind ->
        [broadcasts] Neuigkeiten und Angebote
       *[reminders] Abo-Erinnerungen
    } { $state ->
        [on] ausschalten
       *[off] einschalten
    }
withdraw-fee-changed = Die Auszahlungsgebühr beträgt jetzt { $fee }.
access-granted = Dein Tarif enthält unseren privaten Kanal: öffne diesen Link und stelle eine Beitrittsanfrage; sie wird angenommen, solange dein Abo läuft: { $link }
access-by-request = Dein Tarif enthält unseren privaten Kanal: stelle eine Beitrittsanfrage; sie wird angenommen, solange dein Abo läuft.
access-needs-subscription = Zum Beitritt brauchst du ein Abo, das den Kanal enthält. /subscribe zeigt die Tarife.
access-ended = Dein Abo ist abgelaufen, daher wurdest du aus dem privaten Kanal entfernt. /subscribe bringt dich zurück.
