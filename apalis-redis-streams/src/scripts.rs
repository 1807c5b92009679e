//! The queue's Lua scripts. Every key a script touches belongs to one partition and so carries
//! that partition's hash tag: each script runs on a single slot, which a Redis Cluster requires.
//! Scripts never parse job payloads (Lua's cjson would turn large integers into floats); they
//! move envelopes as opaque strings, and Rust rewrites them where needed.

use redis::Script;

/// Lua prelude: is entry ARGV[2] of KEYS[1] pending for consumer `owner` in group ARGV[1]?
/// A consumer that lost an entry to a reclaim must not retry, bury or release it while the
/// new owner runs it.
const OWNS: &str = r"
local function owns(owner)
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
    return pending[1] ~= nil and pending[1][2] == owner
end
";

/// Lua prelude: the partition has work now; if its readers sleep (key `sleeping` exists),
/// publish its number on `channel` (see the `wake` module).
const WAKE: &str = r"
local function wake(sleeping, channel, partition)
    if redis.call('DEL', sleeping) == 1 then redis.call('PUBLISH', channel, partition) end
end
";

fn owned_script(body: &str) -> Script {
    Script::new(&format!("{OWNS}{WAKE}{body}"))
}

fn waking_script(body: &str) -> Script {
    Script::new(&format!("{WAKE}{body}"))
}



pub struct Scripts {
    /// KEYS: sleeping. ARGV: wake channel, partition. The wake alone, for writes that are plain
    /// commands (`XADD` in a pipeline): sent as `EVAL` after them, in the same round trip.
    pub wake: String,
    pub enqueue: Script,
    pub fetch: Script,
    pub reclaim: Script,
    pub ack: Script,
    pub retry: Script,
    pub bury: Script,
    pub release: Script,
    pub stats: Script,
    pub revive: Script,
    pub touch: Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            wake: format!("{WAKE}wake(KEYS[1], ARGV[1], ARGV[2]) return 0"),
            // KEYS: stream, sleeping, then one dedupe key per job. ARGV: dedupe ttl ms, wake
            // channel, partition, then (envelope, job id) per job. Adds each job whose key is
            // new, and wakes the partition's readers if it added any.
            // Returns, per job, 1 and its id when added, or 0 and the first job's id for a
            // duplicate key.
            enqueue: waking_script(
                r"
                local out = {}
                local added = false
                for i = 3, #KEYS do
                    local envelope, id = ARGV[2 * (i - 2) + 2], ARGV[2 * (i - 2) + 3]
                    local first = redis.call('GET', KEYS[i])
                    if first then
                        table.insert(out, 0)
                        table.insert(out, first)
                    else
                        redis.call('SET', KEYS[i], id, 'PX', ARGV[1])
                        redis.call('XADD', KEYS[1], '*', 'j', envelope)
                        table.insert(out, 1)
                        table.insert(out, id)
                        added = true
                    end
                end
                if added then wake(KEYS[2], ARGV[2], ARGV[3]) end
                return out
                ",
            ),
            // KEYS: stream, delayed, sleeping. ARGV: group, consumer, count, now ms, sleeping ttl ms.
            // Promotes due delayed jobs (at most `count`), then reads up to `count` new entries.
            // Reading fewer than `count` means none is left: the partition's readers are marked
            // asleep in the same step, so the next write wakes them.
            // Returns {entries (XREADGROUP's reply, or nil), asleep (1/0), the earliest delayed
            // job's due time or -1}.
            fetch: Script::new(
                r"
                local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, ARGV[3])
                for _, envelope in ipairs(due) do
                    redis.call('XADD', KEYS[1], '*', 'j', envelope)
                end
                if #due > 0 then redis.call('ZREM', KEYS[2], unpack(due)) end
                local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
                if read and #read[1][2] >= tonumber(ARGV[3]) then return {read, 0, -1} end
                redis.call('SET', KEYS[3], '1', 'PX', ARGV[5])
                local next = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
                local next_due = -1
                if next[2] then next_due = tonumber(next[2]) end
                return {read, 1, next_due}
                ",
            ),
            // KEYS: stream. ARGV: group, consumer, min idle ms, count.
            // Takes over entries idle longer than the visibility timeout and returns
            // {id, envelope, deliveries} for each; entries deleted meanwhile are acknowledged.
            reclaim: Script::new(
                r"
                local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
                local out = {}
                for _, entry in ipairs(claimed[2]) do
                    local id = entry[1]
                    local fields = entry[2]
                    local envelope = nil
                    for i = 1, #fields, 2 do
                        if fields[i] == 'j' then envelope = fields[i + 1] end
                    end
                    local info = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
                    local deliveries = 1
                    if info[1] then deliveries = info[1][4] end
                    if envelope then table.insert(out, {id, envelope, deliveries}) end
                end
                if claimed[3] and #claimed[3] > 0 then
                    redis.call('XACK', KEYS[1], ARGV[1], unpack(claimed[3]))
                end
                return out
                ",
            ),
            // KEYS: stream, counts, then mark keys (the caller's, in the stream's slot). ARGV:
            // group, mark ttl ms, the entry ids, then one value per mark key. Sets the marks,
            // acknowledges and deletes the entries and counts those acknowledged as done, in one
            // step.
            ack: Script::new(
                r"
                local marks = #KEYS - 2
                for i = 1, marks do
                    redis.call('SET', KEYS[i + 2], ARGV[#ARGV - marks + i], 'PX', ARGV[2])
                end
                local ids = {unpack(ARGV, 3, #ARGV - marks)}
                if #ids == 0 then return 0 end
                local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
                if acked > 0 then redis.call('HINCRBY', KEYS[2], 'done', acked) end
                return redis.call('XDEL', KEYS[1], unpack(ids))
                ",
            ),
            // KEYS: stream, delayed, sleeping, counts. ARGV: group, entry id, due ms, new
            // envelope, consumer, wake channel, partition. Sleeping readers wake to learn the new
            // due time. Counts a failed attempt.
            retry: owned_script(
                r"
                if not owns(ARGV[5]) then return 0 end
                redis.call('HINCRBY', KEYS[4], 'failed', 1)
                redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
                redis.call('XDEL', KEYS[1], ARGV[2])
                redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
                wake(KEYS[3], ARGV[6], ARGV[7])
                return 1
                ",
            ),
            // KEYS: stream, dead, counts. ARGV: group, entry id, envelope, error, now ms, dead cap,
            // consumer. Counts a failed attempt.
            bury: owned_script(
                r"
                if not owns(ARGV[7]) then return 0 end
                redis.call('HINCRBY', KEYS[3], 'failed', 1)
                redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
                redis.call('XDEL', KEYS[1], ARGV[2])
                redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'j', ARGV[3], 'e', ARGV[4], 't', ARGV[5])
                return 1
                ",
            ),
            // KEYS: stream, sleeping. ARGV: group, entry id, envelope, consumer, wake channel,
            // partition. Gives back a fetched entry that was never started (shutdown), at the
            // tail, without counting a delivery.
            release: owned_script(
                r"
                if not owns(ARGV[4]) then return 0 end
                redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
                redis.call('XDEL', KEYS[1], ARGV[2])
                redis.call('XADD', KEYS[1], '*', 'j', ARGV[3])
                wake(KEYS[2], ARGV[5], ARGV[6])
                return 1
                ",
            ),
            // KEYS: stream, delayed, dead, counts. ARGV: group.
            // Returns {stream length, in flight, delayed, dead, id of the oldest entry waiting to
            // be delivered or '', done so far, failed so far}. Waiting means after the group's last delivered id: entries up
            // to it were handed out and are running (or acked and gone), and a running job is
            // not a waiting one however long it runs.
            stats: Script::new(
                r"
                local length = redis.call('XLEN', KEYS[1])
                local in_flight = 0
                local after = '-'
                if length > 0 then
                    local ok, summary = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1])
                    if ok then in_flight = summary[1] end
                    local found, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
                    if found then
                        for _, group in ipairs(groups) do
                            local fields = {}
                            for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
                            if fields['name'] == ARGV[1] then after = '(' .. fields['last-delivered-id'] end
                        end
                    end
                end
                local oldest = redis.call('XRANGE', KEYS[1], after, '+', 'COUNT', 1)
                local oldest_id = ''
                if oldest[1] then oldest_id = oldest[1][1] end
                local counts = redis.call('HMGET', KEYS[4], 'done', 'failed')
                return {length, in_flight, redis.call('ZCARD', KEYS[2]), redis.call('XLEN', KEYS[3]), oldest_id,
                    tonumber(counts[1] or '0'), tonumber(counts[2] or '0')}
                ",
            ),
            // KEYS: stream. ARGV: group, consumer, entry ids... Resets the idle time of entries
            // this consumer still runs, so no sweep takes them over (JUSTID: no delivery
            // counted). Entries another consumer took meanwhile are left alone.
            touch: Script::new(
                r"
                local touched = 0
                for i = 3, #ARGV do
                    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
                    if pending[1] ~= nil and pending[1][2] == ARGV[2] then
                        redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
                        touched = touched + 1
                    end
                end
                return touched
                ",
            ),
            // KEYS: dead, stream, sleeping. ARGV: dead entry id, fresh envelope or '' to discard,
            // wake channel, partition. Moves a dead letter back to the queue (or deletes it).
            // Returns 0 if it is gone.
            revive: waking_script(
                r"
                if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
                if ARGV[2] ~= '' then
                    redis.call('XADD', KEYS[2], '*', 'j', ARGV[2])
                    wake(KEYS[3], ARGV[3], ARGV[4])
                end
                return 1
                ",
            ),
        }
    }
}
