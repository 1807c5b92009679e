# Arabic, the default language. Commands and Latin @names sit in left-to-right isolates
# (U+2066 … U+2069, invisible here) so the sentence around them keeps its order.

welcome = أهلاً بك! ⁦/balance⁩ يعرض رصيدك، و⁦/deposit⁩ لإيداع نجوم تيليجرام، و⁦/subscribe⁩ لشراء اشتراك، و⁦/help⁩ لعرض كل الأوامر.
help =
    ⁦/start⁩ — البدء
    ⁦/balance⁩ — رصيدك
    ⁦/history⁩ — معاملاتك
    ⁦/deposit 250⁩ — إيداع نجوم تيليجرام
    ⁦/deposit 10 USDT⁩ — إيداع USDT عبر ⁦@CryptoBot⁩
    ⁦/subscribe⁩ — شراء اشتراك
    ⁦/referral⁩ — رابط الإحالة وأرباحك
    ⁦/withdraw⁩ — السحب إلى محفظتك
    ⁦/cancel⁩ — إيقاف ما بدأته
    ⁦/language⁩ — تغيير اللغة
    ⁦/paysupport⁩ — المساعدة في دفعة
    ⁦/support⁩ — الكتابة إلى فريقنا
    ⁦/notifications⁩ — تفعيل الأخبار والتذكيرات أو إيقافها
    ⁦/terms⁩ — الشروط
    ⁦/help⁩ — هذه القائمة
banned = عذراً، حسابك موقوف. إذا كنت تعتقد أن هذا خطأ، يرجى التواصل مع الدعم.
balance-zero = رصيدك ٠.
balance-header = رصيدك:
deposit-usage = { $error }. مثال: ⁦/deposit 250⁩
deposit-limits = الإيداع من { $min } إلى { $max }، مثال: ⁦/deposit 250⁩.
invoice-title = إيداع { $amount }
invoice-description = يضيف { $amount } إلى رصيدك.
payment-received = تم استلام الدفع: { $amount }. سيظهر في ⁦/balance⁩ خلال لحظات.
not-understood = لم أفهم ذلك. ⁦/help⁩ يعرض ما يمكنني فعله.
invoice-not-yours = هذه الفاتورة ليست لك.
only-stars = نقبل نجوم تيليجرام فقط.
outside-limits = هذا المبلغ خارج حدود الإيداع.
choose-language = اختر لغتك:
language-chosen = تم اختيار اللغة: العربية.
history-empty = لا توجد معاملات بعد.
history-page = السجل، الصفحة { $page }:
history-line = { $date } · { $kind } · { $change }
kind-deposit = إيداع
kind-subscription = اشتراك
kind-referral-commission = عمولة إحالة
kind-withdrawal = سحب
kind-withdrawal-returned = إرجاع سحب
kind-payout = تم إرسال الدفعة
kind-adjustment = تسوية
kind-refund = استرداد الدفعة
confirm = تأكيد
cancel = إلغاء
cancelled = تم الإلغاء.
expired = انتهت صلاحية هذا الطلب. يرجى البدء من جديد.
plans = اختر خطة:
plan-button = { $plan }: { $days ->
        [zero] { $days } يوم
        [one] يوم واحد
        [two] يومان
        [few] { $days } أيام
        [many] { $days } يومًا
       *[other] { $days } يوم
    }، { $price }
subscribed-until = اشتراكك ساري حتى { $until }.
confirm-purchase = شراء { $plan } ({ $days ->
        [zero] { $days } يوم
        [one] يوم واحد
        [two] يومان
        [few] { $days } أيام
        [many] { $days } يومًا
       *[other] { $days } يوم
    }) مقابل { $price } من رصيدك؟
subscribed = تم: { $plan } حتى { $until }.
not-enough-balance = الرصيد غير كافٍ: المطلوب { $amount }. ⁦/deposit⁩ لإضافة رصيد.
unknown-plan = هذه الخطة لم تعد متاحة. ⁦/subscribe⁩ يعرض الخطط الحالية.
referral-info =
    رابط الإحالة الخاص بك: { $link }
    المدعوون: { $count ->
        [zero] لا أحد
        [one] شخص واحد
        [two] شخصان
        [few] { $count } أشخاص
        [many] { $count } شخصًا
       *[other] { $count } شخص
    }
    الأرباح: { $earned }
    تحصل على { $percent }٪ من كل اشتراك يشتريه من دعوتهم.
referral-earned = ربحت { $amount }: أحد من دعوتهم اشترى اشتراكاً.
withdraw-not-enough = يمكنك السحب بدءاً من { $min } (الرسوم { $fee })؛ رصيدك المتاح { $available }.
withdraw-ask-amount = كم تريد أن تسحب؟ من { $min } إلى { $max }؛ المتاح { $available }، الرسوم { $fee }. ⁦/cancel⁩ للإيقاف.
withdraw-bad-amount = هذا المبلغ غير مقبول: { $error }. أرسل مبلغاً آخر، أو ⁦/cancel⁩.
withdraw-ask-address = أرسل عنوان { $format } الذي سيُدفع إليه { $amount }.
withdraw-bad-address = هذا ليس عنوان { $format }. أرسله مرة أخرى، أو ⁦/cancel⁩.
withdraw-confirm = سحب { $amount } (الرسوم { $fee }) إلى { $address }؟
withdraw-approved = تمت الموافقة على سحب { $amount }؛ الدفعة في الطريق.
withdraw-pending-review = تم طلب سحب { $amount }؛ المبلغ محجوز حتى تتم مراجعته.
withdraw-refused = رُفض سحب { $amount }: { $reason }.
withdraw-status = سحبك بمبلغ { $amount } { $status ->
        [requested] بانتظار المراجعة
        [approved] تمت الموافقة عليه
        [processing] قيد الدفع
        [sent] تم إرساله
        [releasing] قيد الإرجاع إلى رصيدك
        [released] أُعيد إلى رصيدك
        [rejected] مرفوض
       *[other] { $status }
    }.
subscription-ends-soon = ينتهي اشتراكك في { $date }. أرسل ⁦/subscribe⁩ لتمديده.
subscription-expired = انتهى اشتراكك. أرسل ⁦/subscribe⁩ لتجديده.
withdrawal-sent = تم إرسال سحب { $amount }.
withdrawal-returned = لم يتم سحب { $amount }؛ أُعيد المبلغ إلى رصيدك.
crypto-invoice = فاتورة بمبلغ { $amount }: ادفعها في ⁦@CryptoBot⁩ بالزر أدناه. يُضاف المبلغ إلى رصيدك بعد الدفع.
pay-button = ادفع { $amount }
crypto-refused = رفضت خدمة الدفع هذه الفاتورة ({ $error }). جرّب مبلغًا آخر.
pay-support = للاستفسار عن دفعة: صف ما حدث في رسالتك التالية، وسيجيبك فريقنا هنا. رقمك { $user_id }؛ ويمكنك أيضًا الكتابة إلى { $contact }. طلبات استرداد النجوم تُعالج هنا أيضًا. ⁦/cancel⁩ للإيقاف.
terms = الشروط: الإيداع بنجوم تيليجرام يُستخدم للاشتراكات في هذا البوت ولا يُسترد إلا عبر ⁦/paysupport⁩. الإيداع والسحب بعملة USDT يتمّان عبر ⁦@CryptoBot⁩. تُراجَع طلبات السحب وقد تُعلَّق للمراجعة. الشروط كاملة: { $url }
answered-in-private = أجبتك في محادثتنا الخاصة.
open-privately = لا تُعرض أموالك في المجموعات: افتح محادثة خاصة مع ⁦@{ $bot }⁩ وأرسل الأمر هناك.
withdraw-choose-currency = من أي رصيد تريد السحب؟
amount-empty = أدخل مبلغًا، مثلاً ١٢٫٥
amount-negative = لا يمكن أن يكون المبلغ سالبًا
amount-not-a-number = «{ $input }» ليس مبلغًا: استخدم الأرقام، مثلاً ١٢٫٥
amount-too-many-decimals = { $currency } يقبل { $max ->
        [0] المبالغ الصحيحة فقط
        [one] منزلة عشرية واحدة على الأكثر
        [two] منزلتين عشريتين على الأكثر
        [few] { $max } منازل عشرية على الأكثر
        [many] { $max } منزلة عشرية على الأكثر
       *[other] { $max } منزلة عشرية على الأكثر
    }
amount-too-large = المبلغ كبير جدًا: الحد الأقصى { $max }
amount-not-positive = يجب أن يكون المبلغ أكبر من ٠
asset-not-offered = { $currency } غير متاحة
withdraw-below-min = الحد الأدنى للسحب { $min }
withdraw-above-max = الحد الأقصى للسحب { $max }
withdraw-over-daily-limit = تجاوزت الحد اليومي: المتبقي اليوم { $left }
withdraw-short-of-fee = المتاح { $available }، والمطلوب مع الرسوم { $needed }
support-started = اكتب سؤالك في رسالتك التالية؛ ستصل إلى فريقنا وسيجيبك هنا. ⁦/cancel⁩ للإيقاف.
support-sent = أُرسلت إلى فريقنا. سيصلك الرد هنا.
support-answer = الدعم: { $text }
support-closed = أُغلق طلب الدعم الخاص بك. ⁦/support⁩ لفتحه من جديد.
notifications =
    ما الذي يمكنني إرساله إليك دون طلب؟
    الأخبار والعروض: { $broadcasts ->
        [on] مفعّلة
       *[off] متوقفة
    }
    تذكيرات الاشتراك: { $reminders ->
        [on] مفعّلة
       *[off] متوقفة
    }
notification-button = { $state ->
        [on] إيقاف
       *[off] تفعيل
    }: { $kind ->
        [broadcasts] الأخبار والعروض
       *[reminders] تذكيرات الاشتراك
    }
withdraw-fee-changed = أصبحت رسوم السحب { $fee }.
access-granted = خطتك تشمل قناتنا الخاصة: افتح هذا الرابط واطلب الانضمام، وسيُقبل طلبك ما دام اشتراكك ساريًا: { $link }
access-by-request = خطتك تشمل قناتنا الخاصة: اطلب الانضمام إليها، وسيُقبل طلبك ما دام اشتراكك ساريًا.
access-needs-subscription = الانضمام يتطلب اشتراكًا يشمل القناة. ⁦/subscribe⁩ يعرض الخطط.
access-ended = انتهى اشتراكك، لذا أُزلت من القناة الخاصة. أرسل ⁦/subscribe⁩ للعودة.
