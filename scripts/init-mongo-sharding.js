// Sets up sharding for OBENTCHI on a mongos (docker-compose.production.yml runs it with mongosh
// after the config server and shard replica sets are initiated):
//   mongosh "mongodb://mongos:27017" scripts/init-mongo-sharding.js
// Idempotent. The shards come from SHARDS ("rs-shard-1/host:port,rs-shard-2/host:port").
// `obentchi-http migrate` does the same enableSharding/shardCollection when it sees a mongos, and
// creates the indexes; this script exists so the cluster is ready before the first deploy.

const database = process.env.OBENTCHI_DATABASE || "obentchi";
const shards = (process.env.SHARDS || "").split(",").filter((s) => s.length > 0);

// Every user-scoped collection, sharded on hashed user_id (core/src/storage.rs USER_SCOPED).
const userCollections = ["users", "balances", "postings", "payments", "withdrawals", "subscriptions"];

const known = new Set(db.adminCommand({ listShards: 1 }).shards.map((s) => s._id));
for (const shard of shards) {
  const name = shard.split("/")[0];
  if (!known.has(name)) {
    printjson(sh.addShard(shard));
  }
}

printjson(db.adminCommand({ enableSharding: database }));
for (const collection of userCollections) {
  const namespace = `${database}.${collection}`;
  const result = db.adminCommand({ shardCollection: namespace, key: { user_id: "hashed" } });
  // "already sharded" answers ok on current servers; older ones return AlreadyInitialized (23).
  if (!result.ok && result.code !== 23) {
    throw new Error(`shardCollection ${namespace}: ${tojson(result)}`);
  }
  print(`sharded ${namespace} on hashed user_id`);
}
