-- wrk script: POSTs Telegram updates with a random 32-bit update_id and chat, as Telegram would
-- (each update once; the chat spreads them over the queue's partitions).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Telegram-Bot-Api-Secret-Token"] = os.getenv("WEBHOOK_SECRET") or "bench-webhook-secret-of-at-least-32-bytes"

math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))

request = function()
  local update_id = math.random(1, 2147483647)
  local chat = math.random(1, 10000000)
  local body = string.format(
    '{"update_id":%d,"message":{"message_id":%d,"from":{"id":%d,"is_bot":false,"first_name":"Bench"},'
    .. '"chat":{"id":%d,"first_name":"Bench","type":"private"},"date":1763712000,"text":"/balance"}}',
    update_id, update_id % 100000, chat, chat)
  return wrk.format(nil, nil, nil, body)
end
