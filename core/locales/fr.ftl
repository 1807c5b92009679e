# French.

welcome = Bienvenue ! /balance affiche votre solde, /deposit ajoute des Telegram Stars, /subscribe achète un abonnement, /help liste tout.
help =
    /start — commencer
    /balance — votre solde
    /history — vos opérations
    /deposit 250 — déposer des Telegram Stars
    /deposit 10 USDT — déposer des USDT via @CryptoBot
    /subscribe — acheter un abonnement
    /referral — votre lien de parrainage et vos gains
    /withdraw — retirer vers votre portefeuille
    /cancel — arrêter ce qui est en cours
    /language — changer de langue
    /paysupport — aide pour un paiement
    /support — écrire à notre équipe
    /notifications — actualités et rappels, activés ou non
    /terms — les conditions
    /help — cette liste
banned = Désolé, votre compte est suspendu. Si vous pensez que c’est une erreur, contactez le support.
balance-zero = Votre solde est de 0.
balance-header = Votre solde :
deposit-usage = { $error }. Par exemple : /deposit 250
deposit-limits = Les dépôts vont de { $min } à { $max }, par exemple /deposit 250.
invoice-title = Dépôt de { $amount }
invoice-description = Ajoute { $amount } à votre solde.
payment-received = Paiement reçu : { $amount }. Il apparaîtra dans /balance dans un instant.
not-understood = Je n’ai pas compris. /help liste ce que je sais faire.
invoice-not-yours = Cette facture n’est pas la vôtre.
only-stars = Seules les Telegram Stars sont acceptées.
outside-limits = Ce montant est hors des limites de dépôt.
choose-language = Choisissez votre langue :
language-chosen = Langue choisie : français.
history-empty = Aucune opération pour l’instant.
history-page = Historique, page { $page } :
history-line = { $date } · { $kind } · { $change }
kind-deposit = dépôt
kind-subscription = abonnement
kind-referral-commission = commission de parrainage
kind-withdrawal = retrait
kind-withdrawal-returned = retrait restitué
kind-payout = paiement envoyé
kind-adjustment = ajustement
kind-refund = paiement remboursé
confirm = Confirmer
cancel = Annuler
cancelled = Annulé.
expired = Cette demande a expiré. Veuillez recommencer.
plans = Choisissez une formule :
plan-button = { $plan } : { $days ->
        [one] { $days } jour
       *[other] { $days } jours
    }, { $price }
subscribed-until = Votre abonnement court jusqu’au { $until }.
confirm-purchase = Acheter { $plan } ({ $days ->
        [one] { $days } jour
       *[other] { $days } jours
    }) pour { $price } sur votre solde ?
subscribed = C’est fait : { $plan } jusqu’au { $until }.
not-enough-balance = Solde insuffisant : il faut { $amount }. /deposit pour l’alimenter.
unknown-plan = Cette formule n’est plus proposée. /subscribe affiche les formules actuelles.
referral-info =
    Votre lien de parrainage : { $link }
    Invités : { $count ->
        [one] { $count } personne
       *[other] { $count } personnes
    }
    Gagné : { $earned }
    Vous recevez { $percent } % de chaque abonnement acheté par vos filleuls.
referral-earned = Vous avez gagné { $amount } : une personne que vous avez invitée a acheté un abonnement.
withdraw-not-enough = Vous pouvez retirer à partir de { $min } (frais { $fee }) ; votre solde disponible est de { $available }.
withdraw-ask-amount = Combien voulez-vous retirer ? De { $min } à { $max } ; disponible { $available }, frais { $fee }. /cancel pour arrêter.
withdraw-bad-amount = Ce montant ne convient pas : { $error }. Envoyez-en un autre, ou /cancel.
withdraw-ask-address = Envoyez l’adresse { $format } à laquelle verser { $amount }.
withdraw-bad-address = Ce n’est pas une adresse { $format }. Renvoyez-la, ou /cancel.
withdraw-confirm = Retirer { $amount } (frais { $fee }) vers { $address } ?
withdraw-approved = Retrait de { $amount } approuvé ; il est en route.
withdraw-pending-review = Retrait de { $amount } demandé ; le montant est mis de côté jusqu’à sa validation.
withdraw-refused = Le retrait de { $amount } a été refusé : { $reason }.
withdraw-status = Votre retrait de { $amount } est { $status ->
        [requested] en attente de validation
        [approved] approuvé
        [processing] en cours de paiement
        [sent] envoyé
        [releasing] en cours de restitution sur votre solde
        [released] restitué sur votre solde
        [rejected] refusé
       *[other] { $status }
    }.
subscription-ends-soon = Votre abonnement se termine le { $date }. /subscribe pour le prolonger.
subscription-expired = Votre abonnement est terminé. /subscribe pour le renouveler.
withdrawal-sent = Votre retrait de { $amount } a été envoyé.
withdrawal-returned = Votre retrait de { $amount } n’a pas abouti ; l’argent est revenu sur votre solde.
crypto-invoice = Facture de { $amount } : payez-la dans @CryptoBot avec le bouton ci-dessous. Votre solde est crédité une fois la facture payée.
pay-button = Payer { $amount }
crypto-refused = Le service de paiement a refusé cette facture ({ $error }). Essayez un autre montant.
pay-support = Une question sur un paiement : décrivez ce qui s’est passé dans votre prochain message, notre équipe répond ici. Votre identifiant est { $user_id } ; vous pouvez aussi écrire à { $contact }. Les remboursements de Stars sont traités ici aussi. /cancel pour arrêter.
terms = Conditions : les dépôts en Telegram Stars paient les abonnements de ce bot et ne sont remboursés que via /paysupport. Les dépôts et retraits en USDT passent par @CryptoBot. Les retraits sont vérifiés et peuvent être retenus pour validation. Conditions complètes : { $url }
answered-in-private = Je vous ai répondu dans notre conversation privée.
open-privately = Votre argent n’est pas affiché dans les groupes : ouvrez une conversation privée avec @{ $bot } et envoyez-y la commande.
withdraw-choose-currency = De quel solde voulez-vous retirer ?
amount-empty = saisissez un montant, par exemple 12,5
amount-negative = le montant ne peut pas être négatif
amount-not-a-number = « { $input } » n’est pas un montant : utilisez des chiffres, par exemple 12,5
amount-too-many-decimals = { $currency } accepte { $max ->
        [0] uniquement des montants entiers
        [one] au plus { $max } décimale
       *[other] au plus { $max } décimales
    }
amount-too-large = le montant est trop élevé : au plus { $max }
amount-not-positive = le montant doit être supérieur à 0
asset-not-offered = { $currency } n’est pas proposé
withdraw-below-min = le retrait minimum est de { $min }
withdraw-above-max = le retrait maximum est de { $max }
withdraw-over-daily-limit = limite quotidienne dépassée : il reste { $left } aujourd’hui
withdraw-short-of-fee = { $available } disponible, { $needed } nécessaire avec les frais
support-started = Écrivez votre question dans votre prochain message ; elle part à notre équipe, qui répond ici. /cancel pour arrêter.
support-sent = Envoyé à notre équipe. Sa réponse arrivera ici.
support-answer = Support : { $text }
support-closed = Votre demande d’assistance est close. /support la rouvre.
notifications =
    Que puis-je vous envoyer sans que vous le demandiez ?
    Actualités et offres : { $broadcasts ->
        [on] activées
       *[off] désactivées
    }
    Rappels d’abonnement : { $reminders ->
        [on] activés
       *[off] désactivés
    }
notification-button = { $state ->
        [on] Désactiver
       *[off] Activer
    } : { $kind ->
        [broadcasts] actualités et offres
       *[reminders] rappels d’abonnement
    }
withdraw-fee-changed = Les frais de retrait sont désormais de { $fee }.
access-granted = Votre formule inclut notre canal privé : ouvrez ce lien et demandez à le rejoindre ; votre demande est acceptée tant que votre abonnement court : { $link }
access-by-request = Votre formule inclut notre canal privé : demandez à le rejoindre, votre demande est acceptée tant que votre abonnement court.
access-needs-subscription = Rejoindre demande un abonnement qui inclut le canal. /subscribe affiche les formules.
access-ended = Votre abonnement est terminé : vous avez été retiré du canal privé. /subscribe pour revenir.
