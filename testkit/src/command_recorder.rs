//! Watches every command the MongoDB driver sends and flags reads and writes on user-scoped
//! collections that a sharded cluster could not route to one shard: the shard key `user_id` is
//! missing from the filter (or from an inserted document). The local server has no `mongos`, so
//! this is how "every query is targeted" is checked.

use std::sync::{Arc, Mutex};

use mongodb::bson::{Bson, Document};
use mongodb::event::command::CommandEvent;
use mongodb::event::EventHandler;
use mongodb::options::ClientOptions;

pub const SHARD_KEY: &str = "user_id";
/// The comment prefix that marks a deliberate, documented fan-out query.
pub const FAN_OUT_PREFIX: &str = "fan-out:";

#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub command: String,
    pub collection: String,
    pub detail: String,
}

#[derive(Default)]
struct Seen {
    checked: usize,
    violations: Vec<Violation>,
}

#[derive(Clone)]
pub struct CommandRecorder {
    user_scoped: Arc<Vec<String>>,
    seen: Arc<Mutex<Seen>>,
}

impl CommandRecorder {
    pub fn new(user_scoped: &[&str]) -> CommandRecorder {
        CommandRecorder {
            user_scoped: Arc::new(user_scoped.iter().map(|s| s.to_string()).collect()),
            seen: Arc::default(),
        }
    }

    /// Routes the driver's command events of a client built from `options` to this recorder.
    pub fn install(&self, options: &mut ClientOptions) {
        let recorder = self.clone();
        options.command_event_handler = Some(EventHandler::callback(move |event| {
            if let CommandEvent::Started(started) = event {
                recorder.check(&started.command_name, &started.command);
            }
        }));
    }

    /// Number of reads and writes on user-scoped collections checked so far.
    pub fn checked(&self) -> usize {
        self.seen.lock().expect("recorder lock").checked
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.seen.lock().expect("recorder lock").violations.clone()
    }

    /// Panics listing every untargeted command seen, or if nothing was checked at all.
    pub fn assert_all_targeted(&self) {
        let seen = self.seen.lock().expect("recorder lock");
        assert!(seen.checked > 0, "the recorder saw no command on a user-scoped collection");
        assert!(seen.violations.is_empty(), "untargeted commands on user-scoped collections: {:#?}", seen.violations);
    }

    fn check(&self, name: &str, command: &Document) {
        let Ok(collection) = command.get_str(name) else { return };
        if !self.user_scoped.iter().any(|c| c == collection) {
            return;
        }
        // A query that must visit every shard says so in its comment (see
        // obentchi_core::broadcasts::FAN_OUT_COMMENT); nothing else may.
        if command.get_str("comment").is_ok_and(|c| c.starts_with(FAN_OUT_PREFIX)) {
            return;
        }
        let problem = match name {
            "find" | "count" | "distinct" => filter_problem(command.get_document(if name == "find" { "filter" } else { "query" }).ok()),
            "findAndModify" => filter_problem(command.get_document("query").ok()),
            "update" => each_problem(command, "updates", |u| filter_problem(u.get_document("q").ok())),
            "delete" => each_problem(command, "deletes", |d| filter_problem(d.get_document("q").ok())),
            "insert" => each_problem(command, "documents", |d| (!d.contains_key(SHARD_KEY)).then(|| "document without user_id".to_owned())),
            "aggregate" => {
                let first_match = command
                    .get_array("pipeline")
                    .ok()
                    .and_then(|p| p.first())
                    .and_then(Bson::as_document)
                    .and_then(|stage| stage.get_document("$match").ok());
                filter_problem(first_match).map(|p| format!("first stage must be a targeted $match: {p}"))
            }
            // Cursor continuations, index and collection management are not routed by filter.
            _ => return,
        };
        let mut seen = self.seen.lock().expect("recorder lock");
        seen.checked += 1;
        if let Some(detail) = problem {
            seen.violations.push(Violation { command: name.to_owned(), collection: collection.to_owned(), detail });
        }
    }
}

fn filter_problem(filter: Option<&Document>) -> Option<String> {
    let Some(filter) = filter else { return Some("no filter".to_owned()) };
    match filter.get(SHARD_KEY) {
        Some(Bson::Int64(_) | Bson::Int32(_)) => None,
        Some(Bson::Document(op)) if op.contains_key("$eq") || op.contains_key("$in") => None,
        Some(other) => Some(format!("user_id is not an equality match: {other}")),
        None => Some(format!("filter without user_id: {filter}")),
    }
}

fn each_problem(command: &Document, field: &str, problem: impl Fn(&Document) -> Option<String>) -> Option<String> {
    let items = command.get_array(field).ok()?;
    items.iter().filter_map(Bson::as_document).find_map(problem)
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;

    #[test]
    fn flags_untargeted_commands_only() {
        let recorder = CommandRecorder::new(&["postings"]);
        recorder.check("find", &doc! { "find": "postings", "filter": { "user_id": 5_i64, "x": 1 } });
        recorder.check("find", &doc! { "find": "postings", "filter": { "_id": "5:k" } });
        recorder.check("update", &doc! { "update": "postings", "updates": [ { "q": { "_id": 1 }, "u": {} } ] });
        recorder.check("insert", &doc! { "insert": "postings", "documents": [ { "user_id": 5_i64 } ] });
        recorder.check("aggregate", &doc! { "aggregate": "postings", "pipeline": [ { "$unwind": "$entries" } ] });
        recorder.check("find", &doc! { "find": "other", "filter": {} });
        assert_eq!(recorder.checked(), 5);
        let flagged: Vec<String> = recorder.violations().into_iter().map(|v| v.command).collect();
        assert_eq!(flagged, ["find", "update", "aggregate"]);
    }
}
