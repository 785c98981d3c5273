//! Storm control: collapse duplicate deliveries, drop classes nobody asked for, and merge the
//! stops of one job and class into one alert (a digest) instead of one alert per task.

use std::collections::{BTreeMap, HashMap};

use super::classify::{Class, Classification, classify};
use super::context::{Origin, TaskDefinitionLookup};
use crate::config::{Alerts, Config};
use crate::event::TaskStateChange;

/// One stopped task, classified, with what is known about its task definition.
#[derive(Debug, Clone, PartialEq)]
pub struct StoppedTask {
    pub change: TaskStateChange,
    pub classification: Classification,
    pub origin: Origin,
    pub definition: TaskDefinitionLookup,
    /// The deliveries (SQS message IDs) that carried this stop; duplicates collapse into one task.
    pub deliveries: Vec<String>,
    /// For a run's final failure after retries: one line per attempt, and why it ended.
    pub history: Vec<String>,
}

impl StoppedTask {
    pub fn new(
        config: &Config,
        change: TaskStateChange,
        definition: TaskDefinitionLookup,
    ) -> StoppedTask {
        let classification = classify(&change, definition.info());
        let origin = Origin::of(config, &change);
        StoppedTask {
            change,
            classification,
            origin,
            definition,
            deliveries: vec![],
            history: vec![],
        }
    }

    pub fn with_history(mut self, history: Vec<String>) -> StoppedTask {
        self.history = history;
        self
    }

    pub fn with_deliveries(mut self, deliveries: Vec<String>) -> StoppedTask {
        self.deliveries = deliveries;
        self
    }

    pub fn class(&self) -> Class {
        self.classification.class
    }
}

/// One alert to publish: one task, or a digest of several of one job and class.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub class: Class,
    /// The job, worker, service or task definition family the tasks belong to.
    pub name: String,
    /// `job`, `service` or `task`.
    pub origin_kind: &'static str,
    /// At least one task, in delivery order.
    pub tasks: Vec<StoppedTask>,
}

impl Alert {
    pub fn single(task: StoppedTask) -> Alert {
        Alert {
            class: task.class(),
            name: task.origin.name().to_owned(),
            origin_kind: task.origin.kind(),
            tasks: vec![task],
        }
    }

    pub fn is_digest(&self) -> bool {
        self.tasks.len() > 1
    }

    /// The deliveries behind this alert: if publishing it fails, these are retried.
    pub fn deliveries(&self) -> impl Iterator<Item = &str> {
        self.tasks
            .iter()
            .flat_map(|t| t.deliveries.iter().map(String::as_str))
    }
}

/// Whether `[alerts] notify_on` asks for `class`.
pub fn wants(alerts: &Alerts, class: Class) -> bool {
    alerts.notify_on.contains(&class)
}

/// Collapses duplicate deliveries of one stop. Deliveries with the same `taskArn` and
/// `detail.version` are the same event; a later version of an already stopped task describes
/// the same stop (STOPPED is final), so only the highest version is kept. Each survivor
/// carries the IDs of every delivery it stands for, in first-seen order.
pub fn dedupe<I>(deliveries: I) -> Vec<(Vec<String>, TaskStateChange)>
where
    I: IntoIterator<Item = (String, TaskStateChange)>,
{
    let mut out: Vec<(Vec<String>, TaskStateChange)> = vec![];
    let mut index: HashMap<String, usize> = HashMap::new();
    for (id, change) in deliveries {
        match index.get(&change.task_arn) {
            Some(&i) => {
                let (ids, kept) = &mut out[i];
                ids.push(id);
                if change.version > kept.version {
                    *kept = change;
                }
            }
            None => {
                index.insert(change.task_arn.clone(), out.len());
                out.push((vec![id], change));
            }
        }
    }
    out
}

/// Splits `tasks` into the alerts to publish (one per job and class, in first-seen order)
/// and the tasks whose class `notify_on` does not ask for.
pub fn group(alerts: &Alerts, tasks: Vec<StoppedTask>) -> (Vec<Alert>, Vec<StoppedTask>) {
    let mut groups: Vec<Alert> = vec![];
    let mut index: BTreeMap<(&'static str, String, Class), usize> = BTreeMap::new();
    let mut quiet = vec![];
    for task in tasks {
        if !wants(alerts, task.class()) {
            quiet.push(task);
            continue;
        }
        let key = (
            task.origin.kind(),
            task.origin.name().to_owned(),
            task.class(),
        );
        match index.get(&key) {
            Some(&i) => groups[i].tasks.push(task),
            None => {
                index.insert(key, groups.len());
                groups.push(Alert::single(task));
            }
        }
    }
    (groups, quiet)
}
