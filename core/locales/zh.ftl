# Chinese (Simplified).

welcome = 欢迎！/balance 查看余额，/deposit 充值 Telegram Stars，/subscribe 购买订阅，/help 列出全部命令。
help =
    /start — 开始
    /balance — 你的余额
    /history — 你的交易记录
    /deposit 250 — 充值 Telegram Stars
    /deposit 10 USDT — 通过 @CryptoBot 充值 USDT
    /subscribe — 购买订阅
    /referral — 你的推荐链接和收益
    /withdraw — 提现到你的钱包
    /cancel — 停止当前操作
    /language — 更改语言
    /paysupport — 付款帮助
    /support — 联系我们的团队
    /notifications — 开启或关闭新闻和提醒
    /terms — 条款
    /help — 本列表
banned = 抱歉，你的账户已被停用。如果你认为这是误会，请联系客服。
balance-zero = 你的余额为 0。
balance-header = 你的余额：
deposit-usage = { $error }。例如：/deposit 250
deposit-limits = 充值金额为 { $min } 至 { $max }，例如 /deposit 250。
invoice-title = 充值 { $amount }
invoice-description = 向你的余额充值 { $amount }。
payment-received = 已收到付款：{ $amount }。稍后会显示在 /balance 中。
not-understood = 我没有理解。/help 列出我能做的事。
invoice-not-yours = 这张账单不是你的。
only-stars = 仅接受 Telegram Stars。
outside-limits = 该金额超出充值限额。
choose-language = 请选择语言：
language-chosen = 语言已设为：中文。
history-empty = 暂无交易。
history-page = 交易记录，第 { $page } 页：
history-line = { $date } · { $kind } · { $change }
kind-deposit = 充值
kind-subscription = 订阅
kind-referral-commission = 推荐佣金
kind-withdrawal = 提现
kind-withdrawal-returned = 提现退回
kind-payout = 已付款
kind-adjustment = 调整
kind-refund = 付款已退款
confirm = 确认
cancel = 取消
cancelled = 已取消。
expired = 该请求已过期，请重新开始。
plans = 请选择套餐：
plan-button = { $plan }：{ $days } 天，{ $price }
subscribed-until = 你的订阅有效期至 { $until }。
confirm-purchase = 用余额 { $price } 购买 { $plan }（{ $days } 天）？
subscribed = 完成：{ $plan } 有效期至 { $until }。
not-enough-balance = 余额不足：需要 { $amount }。/deposit 可充值。
unknown-plan = 该套餐已下架。/subscribe 查看当前套餐。
referral-info =
    你的推荐链接：{ $link }
    已邀请：{ $count } 人
    已赚取：{ $earned }
    你的被推荐人每购买一次订阅，你可获得 { $percent }%。
referral-earned = 你赚取了 { $amount }：你邀请的人购买了订阅。
withdraw-not-enough = 最低提现 { $min }（手续费 { $fee }）；你的可用余额为 { $available }。
withdraw-ask-amount = 你想提现多少？{ $min } 至 { $max }；可用 { $available }，手续费 { $fee }。/cancel 停止。
withdraw-bad-amount = 该金额不可用：{ $error }。请重新发送，或 /cancel。
withdraw-ask-address = 请发送接收 { $amount } 的 { $format } 地址。
withdraw-bad-address = 这不是 { $format } 地址。请重新发送，或 /cancel。
withdraw-confirm = 提现 { $amount }（手续费 { $fee }）到 { $address }？
withdraw-approved = { $amount } 的提现已批准，正在处理。
withdraw-pending-review = 已申请提现 { $amount }；该金额已冻结，等待审核通过。
withdraw-refused = { $amount } 的提现被拒绝：{ $reason }。
withdraw-status = 你的 { $amount } 提现{ $status ->
        [requested] 正在等待审核
        [approved] 已批准
        [processing] 正在付款
        [sent] 已发出
        [releasing] 正在退回余额
        [released] 已退回余额
        [rejected] 已被拒绝
       *[other] 状态：{ $status }
    }。
subscription-ends-soon = 你的订阅将于 { $date } 到期。/subscribe 可续订。
subscription-expired = 你的订阅已到期。/subscribe 可续订。
withdrawal-sent = 你的 { $amount } 提现已发出。
withdrawal-returned = 你的 { $amount } 提现未成功；资金已退回余额。
crypto-invoice = { $amount } 的账单：请点击下方按钮在 @CryptoBot 中支付。付款后余额即到账。
pay-button = 支付 { $amount }
crypto-refused = 支付服务拒绝了此账单（{ $error }）。请尝试其他金额。
pay-support = 付款问题：请在下一条消息中描述经过，我们的团队会在这里回复。你的用户 ID 是 { $user_id }；也可以联系 { $contact }。Stars 退款也在这里处理。/cancel 停止。
terms = 条款：Telegram Stars 充值用于支付本机器人的订阅，仅可通过 /paysupport 退款。USDT 充值和提现通过 @CryptoBot 进行。提现需经审核，可能被暂缓审核。完整条款：{ $url }
answered-in-private = 我已在私聊中回复你。
open-privately = 群组中不显示你的资金：请与 @{ $bot } 开启私聊并在那里发送命令。
withdraw-choose-currency = 你要从哪个余额提现？
amount-empty = 请输入金额，例如 12.5
amount-negative = 金额不能为负数
amount-not-a-number = “{ $input }”不是金额：请使用数字，例如 12.5
amount-too-many-decimals = { $currency } { $max ->
        [0] 只接受整数金额
       *[other] 最多 { $max } 位小数
    }
amount-too-large = 金额过大：最多 { $max }
amount-not-positive = 金额必须大于 0
asset-not-offered = 不支持 { $currency }
withdraw-below-min = 最低提现金额为 { $min }
withdraw-above-max = 最高提现金额为 { $max }
withdraw-over-daily-limit = 超出每日限额：今天还剩 { $left }
withdraw-short-of-fee = 可用 { $available }，含手续费需要 { $needed }
support-started = 请在下一条消息中写下你的问题；它会发送给我们的团队，回复将在这里。/cancel 停止。
support-sent = 已发送给我们的团队。回复会出现在这里。
support-answer = 客服：{ $text }
support-closed = 你的客服请求已关闭。/support 可重新打开。
notifications =
    我可以主动给你发送哪些消息？
    新闻和优惠：{ $broadcasts ->
        [on] 已开启
       *[off] 已关闭
    }
    订阅提醒：{ $reminders ->
        [on] 已开启
       *[off] 已关闭
    }
notification-button = { $state ->
        [on] 关闭
       *[off] 开启
    }{ $kind ->
        [broadcasts] 新闻和优惠
       *[reminders] 订阅提醒
    }
withdraw-fee-changed = 提现手续费现为 { $fee }。
access-granted = 你的套餐包含我们的私密频道：打开此链接申请加入，订阅有效期间申请会被批准：{ $link }
access-by-request = 你的套餐包含我们的私密频道：请申请加入，订阅有效期间申请会被批准。
access-needs-subscription = 加入需要包含该频道的订阅。/subscribe 查看套餐。
access-ended = 你的订阅已到期，因此已被移出私密频道。/subscribe 可重新加入。
