# Spanish.

welcome = ¡Bienvenido! /balance muestra tu saldo, /deposit añade Telegram Stars, /subscribe compra una suscripción, /help lo enumera todo.
help =
    /start — empezar
    /balance — tu saldo
    /history — tus movimientos
    /deposit 250 — depositar Telegram Stars
    /deposit 10 USDT — depositar USDT con @CryptoBot
    /subscribe — comprar una suscripción
    /referral — tu enlace de referido y tus ganancias
    /withdraw — retirar a tu billetera
    /cancel — detener lo que empezaste
    /language — cambiar el idioma
    /paysupport — ayuda con un pago
    /support — escribir a nuestro equipo
    /notifications — activar o desactivar noticias y recordatorios
    /terms — las condiciones
    /help — esta lista
banned = Lo sentimos, tu cuenta está suspendida. Si crees que es un error, contacta con soporte.
balance-zero = Tu saldo es 0.
balance-header = Tu saldo:
deposit-usage = { $error }. Por ejemplo: /deposit 250
deposit-limits = Los depósitos van de { $min } a { $max }, por ejemplo /deposit 250.
invoice-title = Depósito de { $amount }
invoice-description = Añade { $amount } a tu saldo.
payment-received = Pago recibido: { $amount }. Aparecerá en /balance en un momento.
not-understood = No lo he entendido. /help enumera lo que puedo hacer.
invoice-not-yours = Esta factura no es tuya.
only-stars = Solo se aceptan Telegram Stars.
outside-limits = Este importe está fuera de los límites de depósito.
choose-language = Elige tu idioma:
language-chosen = Idioma elegido: español.
history-empty = Todavía no hay movimientos.
history-page = Historial, página { $page }:
history-line = { $date } · { $kind } · { $change }
kind-deposit = depósito
kind-subscription = suscripción
kind-referral-commission = comisión de referido
kind-withdrawal = retiro
kind-withdrawal-returned = retiro devuelto
kind-payout = pago enviado
kind-adjustment = ajuste
kind-refund = pago reembolsado
confirm = Confirmar
cancel = Cancelar
cancelled = Cancelado.
expired = Esa solicitud caducó. Vuelve a empezar.
plans = Elige un plan:
plan-button = { $plan }: { $days ->
        [one] { $days } día
       *[other] { $days } días
    }, { $price }
subscribed-until = Tu suscripción dura hasta { $until }.
confirm-purchase = ¿Comprar { $plan } ({ $days ->
        [one] { $days } día
       *[other] { $days } días
    }) por { $price } de tu saldo?
subscribed = Hecho: { $plan } hasta { $until }.
not-enough-balance = Saldo insuficiente: se necesitan { $amount }. /deposit para añadir fondos.
unknown-plan = Ese plan ya no se ofrece. /subscribe muestra los actuales.
referral-info =
    Tu enlace de referido: { $link }
    Invitados: { $count ->
        [one] { $count } persona
       *[other] { $count } personas
    }
    Ganado: { $earned }
    Recibes el { $percent } % de cada suscripción que compran tus referidos.
referral-earned = Has ganado { $amount }: alguien a quien invitaste compró una suscripción.
withdraw-not-enough = Puedes retirar desde { $min } (comisión { $fee }); tu saldo disponible es { $available }.
withdraw-ask-amount = ¿Cuánto quieres retirar? De { $min } a { $max }; disponible { $available }, comisión { $fee }. /cancel para detenerte.
withdraw-bad-amount = Ese importe no sirve: { $error }. Envía otro, o /cancel.
withdraw-ask-address = Envía la dirección { $format } a la que pagar { $amount }.
withdraw-bad-address = Esa no es una dirección { $format }. Envíala de nuevo, o /cancel.
withdraw-confirm = ¿Retirar { $amount } (comisión { $fee }) a { $address }?
withdraw-approved = Retiro de { $amount } aprobado; ya está en camino.
withdraw-pending-review = Retiro de { $amount } solicitado; el importe queda reservado hasta que una revisión lo apruebe.
withdraw-refused = El retiro de { $amount } fue rechazado: { $reason }.
withdraw-status = Tu retiro de { $amount } está { $status ->
        [requested] pendiente de revisión
        [approved] aprobado
        [processing] en proceso de pago
        [sent] enviado
        [releasing] volviendo a tu saldo
        [released] devuelto a tu saldo
        [rejected] rechazado
       *[other] { $status }
    }.
subscription-ends-soon = Tu suscripción termina el { $date }. /subscribe para ampliarla.
subscription-expired = Tu suscripción ha terminado. /subscribe para renovarla.
withdrawal-sent = Tu retiro de { $amount } fue enviado.
withdrawal-returned = Tu retiro de { $amount } no se completó; el dinero ha vuelto a tu saldo.
crypto-invoice = Factura de { $amount }: págala en @CryptoBot con el botón de abajo. Tu saldo se acredita cuando esté pagada.
pay-button = Pagar { $amount }
crypto-refused = El servicio de pago rechazó esta factura ({ $error }). Prueba con otro importe.
pay-support = Preguntas sobre un pago: describe lo que pasó en tu próximo mensaje y nuestro equipo responde aquí. Tu id de usuario es { $user_id }; también puedes escribir a { $contact }. Los reembolsos de Stars también se gestionan aquí. /cancel para detenerte.
terms = Condiciones: los depósitos en Telegram Stars pagan suscripciones de este bot y solo se reembolsan mediante /paysupport. Los depósitos y retiros en USDT pasan por @CryptoBot. Los retiros se revisan y pueden retenerse para revisión. Condiciones completas: { $url }
answered-in-private = Te he respondido en nuestro chat privado.
open-privately = Tu dinero no se muestra en grupos: abre un chat privado con @{ $bot } y envía allí el comando.
withdraw-choose-currency = ¿De qué saldo quieres retirar?
amount-empty = introduce un importe, por ejemplo 12,5
amount-negative = el importe no puede ser negativo
amount-not-a-number = «{ $input }» no es un importe: usa cifras, por ejemplo 12,5
amount-too-many-decimals = { $currency } admite { $max ->
        [0] solo importes enteros
        [one] como máximo { $max } decimal
       *[other] como máximo { $max } decimales
    }
amount-too-large = el importe es demasiado grande: como máximo { $max }
amount-not-positive = el importe debe ser mayor que 0
asset-not-offered = { $currency } no está disponible
withdraw-below-min = el retiro mínimo es { $min }
withdraw-above-max = el retiro máximo es { $max }
withdraw-over-daily-limit = supera el límite diario: quedan { $left } hoy
withdraw-short-of-fee = { $available } disponible, { $needed } necesario con la comisión
support-started = Escribe tu pregunta en tu próximo mensaje; llega a nuestro equipo, que responde aquí. /cancel para detenerte.
support-sent = Enviado a nuestro equipo. Su respuesta llegará aquí.
support-answer = Soporte: { $text }
support-closed = Tu solicitud de soporte está cerrada. /support la vuelve a abrir.
notifications =
    ¿Qué puedo enviarte sin que lo pidas?
    Noticias y ofertas: { $broadcasts ->
        [on] activadas
       *[off] desactivadas
    }
    Recordatorios de suscripción: { $reminders ->
        [on] activados
       *[off] desactivados
    }
notification-button = { $state ->
        [on] Desactivar
       *[off] Activar
    }: { $kind ->
        [broadcasts] noticias y ofertas
       *[reminders] recordatorios de suscripción
    }
withdraw-fee-changed = La comisión de retiro ahora es { $fee }.
access-granted = Tu plan incluye nuestro canal privado: abre este enlace y pide unirte; tu solicitud se aprueba mientras dure tu suscripción: { $link }
access-by-request = Tu plan incluye nuestro canal privado: pide unirte y tu solicitud se aprueba mientras dure tu suscripción.
access-needs-subscription = Para unirte hace falta una suscripción que incluya el canal. /subscribe muestra los planes.
access-ended = Tu suscripción terminó, así que saliste del canal privado. /subscribe para volver.
