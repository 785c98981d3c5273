use std::collections::BTreeSet;
use std::sync::OnceLock;

use super::*;

/// The config schema, compiled once for every test.
fn schema_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::validator_for(&json_schema())
            .expect("the derived schema is a valid JSON Schema")
    })
}

/// A config document as JSON, whichever format it is written in.
fn document(text: &str, format: Format) -> serde_json::Value {
    match format {
        Format::Json => serde_json::from_str(text).expect("JSON"),
        Format::Toml => toml::from_str(text).expect("TOML"),
    }
}

/// Called by `Config::parse` in this crate's tests: every valid config (every fixture of every
/// core test) must be one the schema accepts.
pub(super) fn assert_schema_accepts(text: &str, format: Format) {
    let document = document(text, format);
    let errors: Vec<String> = schema_validator()
        .iter_errors(&document)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "the schema rejects a valid config: {errors:?}\n{text}"
    );
}

/// The schema's verdict on a document: the errors, empty when it accepts it.
fn schema_errors(text: &str) -> Vec<String> {
    schema_validator()
        .iter_errors(&document(text, Format::Toml))
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

const VALID: &str = r#"
[defaults]
cluster = "jobs"
subnets = ["subnet-1"]
security_groups = ["sg-1"]
capacity = ["FARGATE_SPOT", "FARGATE"]

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
command = ["resize", "s3://{bucket}/{key}"]
environment = { OUT = "thumbs/{key}" }
max_running = 5

[[jobs.thumbnails.size_tiers]]
max_bytes = 1000
cpu = 256
memory = 512

[[jobs.thumbnails.size_tiers]]
cpu = 1024
memory = 2048

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"
prefix = "images/"
"#;

fn error_of(text: &str) -> (String, String) {
    match Config::parse(text, Format::Toml) {
        Err(Error::Config { path, reason }) => (path, reason),
        other => panic!("expected a config error, got {other:?}"),
    }
}

fn with(extra: &str) -> String {
    format!("{VALID}\n{extra}")
}

#[test]
fn example_config_is_valid() {
    let config = Config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/jobrunner.toml"
    )))
    .unwrap();
    assert_eq!(config.jobs.len(), 2);
    assert_eq!(config.triggers.s3[0].job, "thumbnails");
}

#[test]
fn toml_and_json_give_the_same_config() {
    let toml_config = Config::parse(VALID, Format::Toml).unwrap();
    let json = serde_json::to_string(&toml_config).unwrap();
    assert_eq!(Config::parse(&json, Format::Json).unwrap(), toml_config);
    assert_eq!(Format::sniff(&json), Format::Json);
    assert_eq!(Format::sniff(VALID), Format::Toml);
}

#[test]
fn job_inherits_defaults_and_can_override() {
    let config = Config::parse(&with("[jobs.other]\ntask_definition = \"o\"\ncontainer = \"c\"\nlaunch_type = \"FARGATE\"\ncluster = \"c2\""), Format::Toml).unwrap();
    let settings = config.jobs["other"].resolved(&config.defaults);
    assert_eq!(settings.cluster.as_deref(), Some("c2"));
    assert_eq!(settings.subnets, Some(vec!["subnet-1".to_string()]));
    assert_eq!(settings.launch_type, Some(LaunchType::Fargate));
    assert_eq!(
        settings.capacity, None,
        "a job's launch_type replaces the default capacity list"
    );
}

#[test]
fn unknown_field_names_its_path() {
    let (path, reason) = error_of(&VALID.replace("max_running = 5", "max_runing = 5"));
    assert_eq!(path, "jobs.thumbnails.max_runing");
    assert!(reason.contains("unknown field"), "{reason}");
}

#[test]
fn wrong_type_names_its_path() {
    let (path, _) = error_of(&VALID.replace("max_running = 5", "max_running = \"five\""));
    assert_eq!(path, "jobs.thumbnails.max_running");
}

#[test]
fn unknown_job_is_rejected() {
    let (path, reason) = error_of(&with("[[triggers.s3]]\njob = \"nope\"\nbucket = \"b\""));
    assert_eq!(path, "triggers.s3[1].job");
    assert!(reason.contains("unknown job 'nope'"), "{reason}");
}

#[test]
fn invalid_fargate_pair_is_rejected() {
    let (path, reason) =
        error_of(&VALID.replace("cpu = 256\nmemory = 512", "cpu = 256\nmemory = 4096"));
    assert_eq!(path, "jobs.thumbnails.size_tiers[0].cpu");
    assert!(
        reason.contains("not a valid Fargate combination"),
        "{reason}"
    );
}

#[test]
fn ec2_jobs_may_use_any_sizes() {
    let text = with(
        "[jobs.big]\ntask_definition = \"b\"\ncontainer = \"c\"\nlaunch_type = \"EC2\"\ncpu = 300\nmemory = 700",
    );
    assert!(Config::parse(&text, Format::Toml).is_ok());
}

#[test]
fn unknown_placeholder_is_rejected() {
    let (path, reason) = error_of(&VALID.replace("{key}\"]", "{object}\"]"));
    assert_eq!(path, "jobs.thumbnails.command[1]");
    assert!(reason.contains("{object}"), "{reason}");
}

#[test]
fn schedule_job_cannot_use_object_placeholders() {
    let text = with(
        "[jobs.report]\ntask_definition = \"r\"\ncontainer = \"c\"\ncommand = [\"{key}\"]\n[[triggers.schedule]]\nname = \"hourly\"\njob = \"report\"\nexpression = \"rate(1 hour)\"",
    );
    let (path, reason) = error_of(&text);
    assert_eq!(path, "jobs.report.command[0]");
    assert!(reason.contains("{key}"), "{reason}");
}

#[test]
fn names_outside_started_by_charset_are_rejected() {
    let (path, reason) = error_of(&with(
        "[jobs.\"thumb nails\"]\ntask_definition = \"t\"\ncontainer = \"c\"",
    ));
    assert_eq!(path, "jobs.thumb nails");
    assert!(reason.contains("only letters, digits"), "{reason}");
}

#[test]
fn launch_type_and_capacity_are_exclusive() {
    let (path, reason) = error_of(&VALID.replace(
        "capacity = [\"FARGATE_SPOT\", \"FARGATE\"]",
        "capacity = [\"FARGATE\"]\nlaunch_type = \"FARGATE\"",
    ));
    assert_eq!(path, "defaults.launch_type");
    assert!(reason.contains("exclusive"), "{reason}");
}

#[test]
fn reserved_environment_names_are_rejected() {
    let (path, _) = error_of(&VALID.replace("OUT = ", "JOB_KEY = "));
    assert_eq!(path, "jobs.thumbnails.environment.JOB_KEY");
}

#[test]
fn size_tiers_must_increase_and_only_the_last_is_open() {
    let (path, _) = error_of(&VALID.replace("max_bytes = 1000\n", ""));
    assert_eq!(path, "jobs.thumbnails.size_tiers[0].max_bytes");
}

#[test]
fn fargate_needs_subnets() {
    let (path, _) = error_of(&VALID.replace("subnets = [\"subnet-1\"]\n", ""));
    assert_eq!(path, "jobs.thumbnails.subnets");
}

#[test]
fn duplicate_schedule_names_are_rejected() {
    let schedule =
        "[[triggers.schedule]]\nname = \"s\"\njob = \"r\"\nexpression = \"rate(1 hour)\"\n";
    let text = with(&format!(
        "[jobs.r]\ntask_definition = \"r\"\ncontainer = \"c\"\n{schedule}{schedule}"
    ));
    let (path, reason) = error_of(&text);
    assert_eq!(path, "triggers.schedule[1] (s).name");
    assert!(reason.contains("duplicate"), "{reason}");
}

#[test]
fn not_toml_is_one_line_error() {
    let (path, reason) = error_of("this is = = not toml");
    assert_eq!(path, "(root)");
    assert!(!reason.contains('\n'), "{reason}");
}

#[test]
fn missing_cluster_is_rejected() {
    let (path, _) = error_of(&VALID.replace("cluster = \"jobs\"\n", ""));
    assert_eq!(path, "jobs.thumbnails.cluster");
}

#[test]
fn zero_max_running_is_rejected() {
    let (path, _) = error_of(&VALID.replace("max_running = 5", "max_running = 0"));
    assert_eq!(path, "jobs.thumbnails.max_running");
}

#[test]
fn alert_classes_are_checked() {
    let (path, reason) = error_of(&with(
        "[alerts]\ntopic_arn = \"arn:aws:sns:us-east-1:1:t\"\nnotify_on = [\"oom\", \"explosion\"]",
    ));
    assert_eq!(path, "alerts.notify_on[1]");
    assert!(reason.contains("explosion"), "{reason}");
}

// --- parsed once into types ------------------------------------------------------------------

const REPORT_JOB: &str = "[jobs.report]\ntask_definition = \"r\"\ncontainer = \"c\"\n";

fn schedule(name: &str, extra: &str) -> String {
    format!("[[triggers.schedule]]\nname = \"{name}\"\njob = \"report\"\n{extra}\n")
}

#[test]
fn schedule_errors_name_the_schedule() {
    let text = with(&format!(
        "{REPORT_JOB}{}{}",
        schedule("hourly", "expression = \"rate(1 hour)\""),
        schedule("nightly", "expression = \"cron(0 2 * * *)\"")
    ));
    let (path, reason) = error_of(&text);
    assert_eq!(path, "triggers.schedule[1] (nightly).expression");
    assert!(reason.contains("6 fields"), "{reason}");

    let json = r#"{"jobs": {"report": {"task_definition": "r", "container": "c"}},
        "defaults": {"cluster": "c", "subnets": ["s"]},
        "triggers": {"schedule": [{"name": "nightly", "job": "report", "timezone": "Mars/Olympus"}]}}"#;
    match Config::parse(json, Format::Json) {
        Err(Error::Config { path, reason }) => {
            assert_eq!(path, "triggers.schedule[0] (nightly).timezone");
            assert!(reason.contains("not an IANA time zone"), "{reason}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn expressions_and_zones_are_typed_once_loaded() {
    let text = with(&format!(
        "{REPORT_JOB}{}",
        schedule(
            "nightly",
            "expression = \"cron(0 2 * * ? *)\"\ntimezone = \"Europe/Berlin\""
        )
    ));
    let config = Config::parse(&text, Format::Toml).unwrap();
    let schedule = &config.triggers.schedule[0];
    assert!(matches!(
        schedule.expression,
        Some(ScheduleExpression::Cron(_))
    ));
    assert_eq!(
        schedule.timezone.unwrap().tz(),
        chrono_tz::Tz::Europe__Berlin
    );
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(
        json["triggers"]["schedule"][0]["expression"],
        "cron(0 2 * * ? *)"
    );
    assert_eq!(json["triggers"]["schedule"][0]["timezone"], "Europe/Berlin");
}

fn windowed_worker(window: &str) -> String {
    format!(
        r#"
[state]
table = "t"

[workers.orders]
cluster = "jobs"
service = "order-workers"
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
messages_per_task = 10
max_tasks = 20

[[workers.orders.windows]]
{window}
"#
    )
}

#[test]
fn window_errors_name_the_field() {
    let error = |window: &str| error_of(&windowed_worker(window));
    let (path, reason) =
        error("days = [\"MON\", \"FUNDAY\"]\nstart = \"09:00\"\nend = \"17:00\"\nmin_tasks = 1");
    assert_eq!(path, "workers.orders.windows[0].days[1]");
    assert!(reason.contains("'FUNDAY' is not a day"), "{reason}");
    let (path, _) =
        error("days = [\"MON-XYZ\"]\nstart = \"09:00\"\nend = \"17:00\"\nmin_tasks = 1");
    assert_eq!(path, "workers.orders.windows[0].days[0]");
    for bad in ["9:00", "24:00", "12:60", "0900", "ab:cd", "12:3x"] {
        let (path, reason) = error(&format!(
            "start = \"{bad}\"\nend = \"17:00\"\nmin_tasks = 1"
        ));
        assert_eq!(path, "workers.orders.windows[0].start", "{bad}");
        assert!(reason.contains("HH:MM"), "{reason}");
    }
    let (path, _) = error("start = \"09:00\"\nend = \"24:01\"\nmin_tasks = 1");
    assert_eq!(path, "workers.orders.windows[0].end");
    let (path, reason) = error("start = \"09:00\"\nend = \"09:00\"\nmin_tasks = 1");
    assert_eq!(path, "workers.orders.windows[0].end");
    assert!(reason.contains("24:00"), "{reason}");
    for bad in [
        "Mars/Olympus",
        "+15:00",
        "+1:5",
        "+",
        "+02:60",
        "Europe/Nowhere",
        "",
    ] {
        let (path, reason) = error(&format!(
            "start = \"09:00\"\nend = \"17:00\"\ntimezone = \"{bad}\"\nmin_tasks = 1"
        ));
        assert_eq!(path, "workers.orders.windows[0].timezone", "{bad}");
        assert!(reason.contains("IANA"), "{reason}");
    }
    let (path, reason) = error("start = \"09:00\"\nend = \"17:00\"");
    assert_eq!(path, "workers.orders.windows[0].min_tasks");
    assert!(reason.contains("must set"), "{reason}");
    let (path, reason) = error("start = \"09:00\"\nend = \"17:00\"\nmin_tasks = 30");
    assert_eq!(path, "workers.orders.windows[0].max_tasks");
    assert!(reason.contains("below its min_tasks 30"), "{reason}");
}

#[test]
fn alert_classes_are_typed() {
    let text = with(
        "[alerts]\ntopic_arn = \"arn:aws:sns:us-east-1:1:t\"\nnotify_on = [\"oom\", \"succeeded\"]",
    );
    let config = Config::parse(&text, Format::Toml).unwrap();
    assert_eq!(
        config.alerts.unwrap().notify_on,
        [crate::class::Class::Oom, crate::class::Class::Succeeded]
    );
}

// --- a config that validates must run (hardening) -------------------------------------------

#[test]
fn workers_need_a_state_table() {
    let text = windowed_worker("start = \"09:00\"\nend = \"17:00\"\nmin_tasks = 1")
        .replace("[state]\ntable = \"t\"\n", "");
    let (path, reason) = error_of(&text);
    assert_eq!(path, "state.table");
    assert!(reason.contains("orders"), "{reason}");
}

#[test]
fn tags_follow_ecs_rules_in_characters() {
    // 128 and 256 characters of two bytes each: within ECS's limits, which count characters.
    let key = "ü".repeat(128);
    let value = "é".repeat(256);
    let ok = VALID.replace(
        "max_running = 5",
        &format!("max_running = 5\ntags = {{ \"{key}\" = \"{value}\", \"team name\" = \"a_b.c:d/e=f+g-h@i 9\" }}"),
    );
    Config::parse(&ok, Format::Toml).unwrap();
    for (tags, reason) in [
        (format!("\"{}\" = \"v\"", "ü".repeat(129)), "1 to 128"),
        (format!("k = \"{}\"", "é".repeat(257)), "at most 256"),
        ("k = \"a\\nConsole: x\"".to_string(), "'\\n'"),
        ("k = \"<script>\"".to_string(), "'<'"),
        ("\"a#b\" = \"v\"".to_string(), "'#'"),
        ("k = \"50%\"".to_string(), "'%'"),
        ("k = \"a\\u2028b\"".to_string(), "'\\u{2028}'"),
    ] {
        let text = VALID.replace(
            "max_running = 5",
            &format!("max_running = 5\ntags = {{ {tags} }}"),
        );
        let (path, why) = error_of(&text);
        assert!(path.starts_with("jobs.thumbnails.tags."), "{tags}: {path}");
        assert!(why.contains(reason), "{tags}: {why}");
    }
}

#[test]
fn rates_that_would_overflow_are_rejected() {
    for rate in [
        "rate(2147483647 days)",
        "rate(4294967296 minutes)",
        "rate(100000 hours)",
    ] {
        let text = with(&format!(
            "{REPORT_JOB}{}",
            schedule("s", &format!("expression = \"{rate}\""))
        ));
        let (path, reason) = error_of(&text);
        assert_eq!(path, "triggers.schedule[0] (s).expression", "{rate}");
        assert!(reason.contains("1 to 99999"), "{rate}: {reason}");
    }
}

#[test]
fn cron_year_steps_are_accepted() {
    for year in ["2024/2", "*/2", "2026-2040/5", "2026,2028"] {
        let text = with(&format!(
            "{REPORT_JOB}{}",
            schedule("s", &format!("expression = \"cron(0 9 1 1 ? {year})\""))
        ));
        Config::parse(&text, Format::Toml).unwrap_or_else(|e| panic!("{year}: {e}"));
    }
}

#[test]
fn placeholder_format_specs_are_rejected() {
    for spec in ["{key:.3}", "{key:>100000}", "{ key }"] {
        let (path, reason) = error_of(&VALID.replace("{key}\"]", &format!("{spec}\"]")));
        assert_eq!(path, "jobs.thumbnails.command[1]", "{spec}");
        assert!(reason.contains("not a plain {name}"), "{spec}: {reason}");
    }
}

#[test]
fn overrides_that_can_never_fit_are_rejected() {
    // 9,000 characters of fixed text: every event would fail with an 8,192-character limit.
    let long = "x".repeat(9000);
    let (path, reason) =
        error_of(&VALID.replace("OUT = \"thumbs/{key}\"", &format!("OUT = \"{long}\"")));
    assert_eq!(path, "jobs.thumbnails.command");
    assert!(reason.contains("8192"), "{reason}");
    // Many placeholders alone are fine: only the fixed part is counted.
    let many = "{key}".repeat(3000);
    Config::parse(
        &VALID.replace("OUT = \"thumbs/{key}\"", &format!("OUT = \"{many}\"")),
        Format::Toml,
    )
    .unwrap();
    // A schedule's own command and environment count against its job's container.
    let text = with(&format!(
        "{REPORT_JOB}{}",
        schedule(
            "s",
            &format!(
                "expression = \"rate(1 hour)\"\ncommand = [\"{}\"]",
                "y".repeat(8200)
            )
        )
    ));
    let (path, _) = error_of(&text);
    assert_eq!(path, "triggers.schedule[0] (s).command");
}

#[test]
fn fargate_sizes_are_checked_when_providers_mix_fargate_and_ec2() {
    let text = with(
        "[jobs.mixed]\ntask_definition = \"m\"\ncontainer = \"c\"\ncapacity = [\"FARGATE_SPOT\", \"my-ec2-provider\"]\ncpu = 256\nmemory = 4096",
    );
    let (path, reason) = error_of(&text);
    assert_eq!(path, "jobs.mixed.cpu");
    assert!(
        reason.contains("not a valid Fargate combination"),
        "{reason}"
    );
    // EC2 providers only: any size.
    Config::parse(&text.replace("\"FARGATE_SPOT\", ", ""), Format::Toml).unwrap();
}

#[test]
fn schedule_names_ambiguous_for_rules_are_rejected() {
    let text = with(&format!(
        "{REPORT_JOB}{}{}",
        schedule("x", "expression = \"rate(1 hour)\""),
        schedule("jobrunner-x", "expression = \"rate(2 hours)\"")
    ));
    let (path, reason) = error_of(&text);
    assert_eq!(path, "triggers.schedule[1] (jobrunner-x).name");
    assert!(reason.contains("ambiguous"), "{reason}");
}

#[test]
fn placeholders_in_shell_scripts_are_warned_about() {
    let config = |command: &str| {
        Config::parse(
            &VALID.replace(
                "command = [\"resize\", \"s3://{bucket}/{key}\"]",
                &format!("command = {command}"),
            ),
            Format::Toml,
        )
        .unwrap()
    };
    let warned = warnings(&config(
        r#"["/bin/sh", "-c", "resize s3://{bucket}/{key}"]"#,
    ));
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].path, "jobs.thumbnails.command[2]");
    assert!(warned[0].message.contains("sh -c"), "{}", warned[0]);
    assert_eq!(
        warnings(&config(r#"["bash", "-ec", "echo {key}"]"#)).len(),
        1
    );
    // The value as an argument after the script, or no shell at all: no warning.
    assert!(warnings(&config(r#"["sh", "-c", "resize \"$1\"", "sh", "{key}"]"#)).is_empty());
    assert!(warnings(&config(r#"["resize", "{key}"]"#)).is_empty());
    assert!(warnings(&config(r#"["sh", "script.sh", "{key}"]"#)).is_empty());
}

// --- one schema --------------------------------------------------------------------------------

fn repo_file(path: &str) -> String {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

#[test]
fn schema_accepts_the_example_and_bench_configs() {
    for path in ["examples/jobrunner.toml", "bench/jobrunner.toml"] {
        let text = repo_file(path);
        assert_eq!(schema_errors(&text), Vec::<String>::new(), "{path}");
        Config::parse(&text, Format::Toml).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

#[test]
fn schema_rejects_unknown_fields_and_bad_values() {
    assert!(schema_errors(VALID).is_empty());
    for (from, to) in [
        ("max_running = 5", "max_runing = 5"),
        ("[defaults]", "[defaults]\nlaunch_typ = \"EC2\""),
        (
            "prefix = \"images/\"",
            "prefix = \"images/\"\nevent = \"created\"",
        ),
        (
            "capacity = [\"FARGATE_SPOT\", \"FARGATE\"]",
            "launch_type = \"fargate\"",
        ),
        ("max_running = 5", "max_running = -1"),
    ] {
        let text = VALID.replace(from, to);
        assert!(!schema_errors(&text).is_empty(), "{to}");
        assert!(Config::parse(&text, Format::Toml).is_err(), "{to}");
    }
    for extra in [
        format!(
            "{REPORT_JOB}{}",
            schedule(
                "s",
                "expression = \"rate(1 hour)\"\noverlap = \"sometimes\""
            )
        ),
        format!(
            "{REPORT_JOB}{}",
            schedule("s", "expression = \"at(2026-01-01T00:00:00)\"")
        ),
        format!(
            "{REPORT_JOB}{}",
            schedule("s", "expression = \"rate(1 hours)\"")
        ),
        format!(
            "{REPORT_JOB}{}",
            schedule("s", "expression = \"rate(100000 days)\"")
        ),
        format!(
            "{REPORT_JOB}{}",
            schedule("s", "expression = \"cron(0 12 1 * MON *)\"")
        ),
        format!(
            "{REPORT_JOB}{}",
            schedule("s", "timezone = \"Mars/Olympus\"")
        ),
        "[alerts]\ntopic_arn = \"arn:aws:sns:us-east-1:1:t\"\nnotify_on = [\"explosion\"]".into(),
        "[state]\ntable = \"t\"\ncolumns = 3".into(),
        windowed_worker("start = \"9:00\"\nend = \"17:00\"\nmin_tasks = 1"),
        windowed_worker("start = \"09:00\"\nend = \"24:00\"\ndays = [\"MONDAY\"]\nmin_tasks = 1"),
        windowed_worker("start = \"09:00\"\nend = \"17:00\"\ntimezone = \"+15:00\"\nmin_tasks = 1"),
    ] {
        let text = with(&extra);
        assert!(!schema_errors(&text).is_empty(), "{extra}");
        assert!(Config::parse(&text, Format::Toml).is_err(), "{extra}");
    }
    for extra in [
        windowed_worker(
            "start = \"09:00\"\nend = \"24:00\"\ndays = [\"mon-Fri\"]\ntimezone = \"UTC+05:30\"\nmin_tasks = 1",
        ),
        windowed_worker("start = \"22:00\"\nend = \"06:00\"\ntimezone = \"-0800\"\nmin_tasks = 1"),
        format!(
            "{REPORT_JOB}{}",
            schedule(
                "s",
                "expression = \"cron(0 9 1 1 ? */2)\"\ntimezone = \"America/New_York\""
            )
        ),
    ] {
        let text = with(&extra);
        assert_eq!(schema_errors(&text), Vec::<String>::new(), "{extra}");
        Config::parse(&text, Format::Toml).unwrap_or_else(|e| panic!("{extra}: {e}"));
    }
}

#[test]
fn schema_marks_every_object_closed() {
    fn walk(node: &serde_json::Value, at: &str) {
        match node {
            serde_json::Value::Object(map) => {
                if map.contains_key("properties") {
                    assert_eq!(
                        map.get("additionalProperties"),
                        Some(&serde_json::Value::Bool(false)),
                        "{at} allows unknown fields"
                    );
                }
                for (key, value) in map {
                    walk(value, &format!("{at}/{key}"));
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{at}/{i}"));
                }
            }
            _ => {}
        }
    }
    walk(&json_schema(), "#");
}

/// Fields of the config as `(table, field)`.
type Fields = BTreeSet<(String, String)>;

/// Every field of the schema, as `(table, field)`, with `<name>` for map keys:
/// `("jobs.<name>", "command")`, `("jobs.<name>.size_tiers", "max_bytes")`. `leaves` are the
/// fields holding values (not tables); `all` holds every field.
fn schema_fields() -> (Fields, Fields) {
    let schema = json_schema();
    fn resolve_in<'s>(
        schema: &'s serde_json::Value,
        mut node: &'s serde_json::Value,
    ) -> Option<serde_json::Value> {
        loop {
            if let Some(reference) = node.get("$ref").and_then(|r| r.as_str()) {
                node = schema.pointer(reference.trim_start_matches('#'))?;
            } else if let Some(any) = node.get("anyOf").and_then(|a| a.as_array()) {
                node = any.iter().find(|n| n.get("type") != Some(&"null".into()))?;
            } else {
                return Some(node.clone());
            }
        }
    }
    let resolve = |node: &serde_json::Value| resolve_in(&schema, node);
    // The table a field opens: `(suffix, object schema)` for objects, maps and lists of objects.
    let table_of = |node: &serde_json::Value| -> Option<(String, serde_json::Value)> {
        let node = resolve(node)?;
        if node.get("properties").is_some() {
            return Some((String::new(), node));
        }
        for (key, suffix) in [("items", ""), ("additionalProperties", ".<name>")] {
            if let Some(inner) = node.get(key).filter(|v| v.is_object()).and_then(&resolve)
                && inner.get("properties").is_some()
            {
                return Some((suffix.to_string(), inner));
            }
        }
        None
    };
    let (mut leaves, mut all) = (BTreeSet::new(), BTreeSet::new());
    let mut tables = vec![(String::new(), schema.clone())];
    while let Some((table, node)) = tables.pop() {
        for (field, value) in node["properties"].as_object().unwrap() {
            all.insert((table.clone(), field.clone()));
            match table_of(value) {
                Some((suffix, inner)) => {
                    let path = if table.is_empty() {
                        field.clone()
                    } else {
                        format!("{table}.{field}")
                    };
                    tables.push((format!("{path}{suffix}"), inner));
                }
                None => {
                    leaves.insert((table.clone(), field.clone()));
                }
            }
        }
    }
    (leaves, all)
}

/// The README's configuration reference as `(table, field)`: each table row's first column
/// names fields (in backticks) of the tables the section heading names (`[jobs.<name>]`,
/// `[[triggers.schedule]]`, in backticks).
fn readme_fields() -> Fields {
    let readme = repo_file("README.md");
    let start = readme
        .find("\n## Configuration reference")
        .expect("README has a Configuration reference");
    let section = &readme[start + 1..];
    let end = section[1..].find("\n## ").map_or(section.len(), |i| i + 1);
    let backticked = |text: &str| -> Vec<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let mut tables: Vec<String> = vec![];
    let mut documented = BTreeSet::new();
    for line in section[..end].lines() {
        if line.starts_with("### ") {
            tables = backticked(line)
                .into_iter()
                .filter(|t| t.starts_with('['))
                .map(|t| t.trim_matches(['[', ']']).to_string())
                .collect();
        } else if let Some(row) = line.strip_prefix('|') {
            let first = row.split('|').next().unwrap_or("").trim();
            if first == "field" || first.starts_with("---") {
                continue;
            }
            assert!(
                !tables.is_empty(),
                "README row outside a table section: {line}"
            );
            for field in backticked(first) {
                for table in &tables {
                    documented.insert((table.clone(), field.clone()));
                }
            }
        }
    }
    documented
}

#[test]
fn readme_documents_exactly_the_schema_fields() {
    let (leaves, all) = schema_fields();
    let documented = readme_fields();
    assert!(leaves.len() > 40, "{leaves:?}");
    let undocumented: Vec<_> = leaves.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "fields the README's configuration reference does not document: {undocumented:?}"
    );
    let unknown: Vec<_> = documented.difference(&all).collect();
    assert!(
        unknown.is_empty(),
        "fields the README documents but the schema lacks: {unknown:?}"
    );
}

#[test]
fn schema_holds_the_ecs_tag_rules() {
    let tagged = |tags: &str| {
        VALID.replace(
            "max_running = 5",
            &format!("max_running = 5\ntags = {{ {tags} }}"),
        )
    };
    let ok = tagged(&format!(
        "\"{}\" = \"{}\", team = \"a b_c.d:e/f=g+h-i@j\"",
        "ü".repeat(128),
        "é".repeat(256)
    ));
    assert_eq!(schema_errors(&ok), Vec::<String>::new());
    for bad in [
        "\"a#b\" = \"v\"".to_string(),
        "k = \"<script>\"".to_string(),
        "\"aws:owner\" = \"v\"".to_string(),
        "\"jobrunner:job\" = \"v\"".to_string(),
        format!("\"{}\" = \"v\"", "ü".repeat(129)),
        format!("k = \"{}\"", "é".repeat(257)),
    ] {
        let text = tagged(&bad);
        assert!(!schema_errors(&text).is_empty(), "{bad}");
        assert!(Config::parse(&text, Format::Toml).is_err(), "{bad}");
    }
}

// --- the ledger's settings ---------------------------------------------------------------------

#[test]
fn ledger_settings_have_defaults_and_bounds() {
    let config = Config::parse(
        &with("[state]\ntable = \"t\"\n[alerts]\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:a\"\n"),
        Format::Toml,
    )
    .unwrap();
    assert_eq!(config.state.as_ref().unwrap().retention_days, 30);
    assert_eq!(
        config
            .alerts
            .as_ref()
            .unwrap()
            .missed_schedule_after
            .as_secs(),
        600
    );
    let (path, reason) = error_of(&with(
        "[launcher]\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\nwait_seconds = 901\n",
    ));
    assert_eq!(path, "launcher.wait_seconds");
    assert!(reason.contains("900"), "{reason}");
    let (path, _) = error_of(&with("[launcher]\nqueue_url = \"orders\"\n"));
    assert_eq!(path, "launcher.queue_url");
    let (path, _) = error_of(&with("[state]\ntable = \"t\"\nretention_days = 0\n"));
    assert_eq!(path, "state.retention_days");
    let (path, _) = error_of(&with(
        "[prices]\nvcpu_hour = -1.0\ngb_hour = 0.0\nspot_vcpu_hour = 0.0\nspot_gb_hour = 0.0\n",
    ));
    assert_eq!(path, "prices.vcpu_hour");
}

#[test]
fn time_limits_are_inherited_and_must_be_positive() {
    let config = Config::parse(
        &VALID.replace("[defaults]\n", "[defaults]\nmax_runtime = \"30m\"\n"),
        Format::Toml,
    )
    .unwrap();
    for job in config.jobs.values() {
        let settings = job.resolved(&config.defaults);
        assert_eq!(settings.max_runtime.unwrap().as_secs(), 1800);
        assert_eq!(settings.start_timeout, None);
    }
    let (path, reason) =
        error_of(&VALID.replace("[defaults]\n", "[defaults]\nstart_timeout = \"0s\"\n"));
    assert_eq!(path, "defaults.start_timeout");
    assert!(reason.contains("at least one second"), "{reason}");
    let (path, _) =
        error_of(&VALID.replace("[defaults]\n", "[defaults]\nmax_runtime = \"soon\"\n"));
    assert!(path.contains("max_runtime"), "{path}");
}

#[test]
fn retry_settings_are_checked() {
    let ledger = "[state]\ntable = \"t\"\n[launcher]\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\n";
    let with_retry = |retry: &str| {
        format!(
            "{}\n{ledger}",
            VALID.replace(
                "[defaults]\n",
                &format!("[defaults]\nretry = {{ {retry} }}\n")
            )
        )
    };
    let config = Config::parse(&with_retry("attempts = 3"), Format::Toml).unwrap();
    let retry = config.defaults.retry.clone().unwrap();
    assert_eq!(retry.backoff.as_secs(), 30);
    assert_eq!(retry.max_backoff.as_secs(), 900);
    assert_eq!(retry.on, default_retry_on());
    assert!(!retry.grow_on_oom);
    for (retry, field, words) in [
        ("attempts = 0", "attempts", "1 to 10"),
        ("attempts = 11", "attempts", "1 to 10"),
        ("attempts = 2, backoff = \"13h\"", "backoff", "12h"),
        ("attempts = 2, on = [\"succeeded\"]", "on", "'succeeded'"),
        (
            "attempts = 2, on = [\"oom\"], exit_codes = [1]",
            "exit_codes",
            "non_zero_exit",
        ),
    ] {
        let (path, reason) = error_of(&with_retry(retry));
        assert_eq!(path, format!("defaults.retry.{field}"), "{retry}");
        assert!(reason.contains(words), "{retry}: {reason}");
    }
    let (path, reason) =
        error_of(&VALID.replace("[defaults]\n", "[defaults]\nretry = { attempts = 2 }\n"));
    assert!(
        path.ends_with(".retry") || path.starts_with("defaults.retry"),
        "{path}"
    );
    assert!(reason.contains("[state]"), "{reason}");
    let at_max = format!(
        "{VALID}\n{ledger}\n[jobs.big]\ntask_definition = \"t\"\ncontainer = \"app\"\ncpu = 256\nmemory = 2048\nretry = {{ attempts = 2, grow_on_oom = true }}\n"
    );
    let (path, reason) = error_of(&at_max);
    assert_eq!(path, "jobs.big.retry.grow_on_oom");
    assert!(reason.contains("cpu 256 / memory 2048"), "{reason}");
}

#[test]
fn skip_missing_needs_an_s3_trigger_and_the_ledger() {
    let skip = VALID.replace("max_running = 5", "max_running = 5\nskip_missing = true");
    let (path, reason) = error_of(&skip);
    assert_eq!(path, "jobs.thumbnails.skip_missing");
    assert!(reason.contains("[state]"), "{reason}");
    let with_state = format!("{skip}\n[state]\ntable = \"t\"\n");
    let config = Config::parse(&with_state, Format::Toml).unwrap();
    assert!(config.jobs["thumbnails"].skip_missing);
    let scheduled = format!(
        "{VALID}\n[state]\ntable = \"t\"\n[jobs.report]\ntask_definition = \"r\"\ncontainer = \"c\"\nskip_missing = true\n"
    );
    let (path, reason) = error_of(&scheduled);
    assert_eq!(path, "jobs.report.skip_missing");
    assert!(reason.contains("only to S3-triggered jobs"), "{reason}");
}

/// A jobs-mode worker `thumbs` with `extra` lines, `[defaults]` subnets and a state table.
fn jobs_worker(extra: &str) -> String {
    format!(
        r#"
[defaults]
subnets = ["subnet-1"]
security_groups = ["sg-1"]

[state]
table = "t"

[workers.thumbs]
mode = "jobs"
cluster = "jobs"
queue_url = "https://sqs.us-east-1.amazonaws.com/1/thumbs"
task_definition = "thumbs"
container = "app"
command = ["thumbs"]
messages_per_task = 5
max_tasks = 10
{extra}
"#
    )
}

#[test]
fn jobs_mode_workers_validate_and_inherit_defaults() {
    let config = Config::parse(
        &jobs_worker("idle_exit = \"2m\"\ncapacity = [\"FARGATE_SPOT\", \"FARGATE\"]"),
        Format::Toml,
    )
    .unwrap();
    let worker = &config.workers["thumbs"];
    assert_eq!(worker.mode, WorkerMode::Jobs);
    assert_eq!(worker.idle_exit_seconds(), 120);
    let settings = worker.resolved(&config.defaults);
    assert_eq!(settings.cluster.as_deref(), Some("jobs"));
    assert_eq!(settings.subnets, Some(vec!["subnet-1".to_string()]));
    assert_eq!(settings.capacity.as_ref().map(Vec::len), Some(2));
    // The default idle exit.
    let config = Config::parse(&jobs_worker(""), Format::Toml).unwrap();
    assert_eq!(config.workers["thumbs"].idle_exit_seconds(), 60);
}

#[test]
fn jobs_mode_workers_refuse_what_cannot_run() {
    let remove = |text: String, line: &str| text.replace(line, "");
    let cases = [
        (
            remove(jobs_worker(""), "task_definition = \"thumbs\"\n"),
            "workers.thumbs.task_definition",
            "required",
        ),
        (
            remove(jobs_worker(""), "container = \"app\"\n"),
            "workers.thumbs.container",
            "required",
        ),
        (
            remove(jobs_worker(""), "command = [\"thumbs\"]\n"),
            "workers.thumbs.command",
            "required",
        ),
        (
            jobs_worker("service = \"s\""),
            "workers.thumbs.service",
            "standalone",
        ),
        (
            jobs_worker("min_tasks = 1"),
            "workers.thumbs.min_tasks",
            "exit",
        ),
        (
            jobs_worker("max_step_in = 1"),
            "workers.thumbs.max_step_in",
            "service",
        ),
        (
            jobs_worker("idle_exit = \"0s\""),
            "workers.thumbs.idle_exit",
            "second",
        ),
        (
            jobs_worker("launch_type = \"FARGATE\"\ncapacity = [\"FARGATE\"]"),
            "workers.thumbs.launch_type",
            "exclusive",
        ),
        (
            remove(jobs_worker(""), "subnets = [\"subnet-1\"]\n"),
            "workers.thumbs.subnets",
            "subnet",
        ),
        (
            jobs_worker(
                "[[workers.thumbs.windows]]\nstart = \"09:00\"\nend = \"17:00\"\nmin_tasks = 2",
            ),
            "workers.thumbs.windows[0].min_tasks",
            "idle",
        ),
        (
            jobs_worker(
                "[jobs.worker]\ntask_definition = \"x\"\ncontainer = \"x\"\ncluster = \"c\"",
            ),
            "jobs.worker",
            "startedBy",
        ),
    ];
    for (text, path, word) in cases {
        let (got, reason) = error_of(&text);
        assert_eq!(got, path, "{reason}");
        assert!(reason.contains(word), "{path}: {reason}");
    }
}

#[test]
fn service_mode_workers_refuse_jobs_fields_and_need_a_service() {
    let text = windowed_worker("start = \"09:00\"\nend = \"17:00\"\nmin_tasks = 1");
    let with = |field: &str| {
        text.replace(
            "[[workers.orders.windows]]",
            &format!("{field}\n[[workers.orders.windows]]"),
        )
    };
    let (path, reason) = error_of(&with("task_definition = \"x\""));
    assert_eq!(path, "workers.orders.task_definition");
    assert!(reason.contains("jobs"), "{reason}");
    let (path, _) = error_of(&with("subnets = [\"s\"]"));
    assert_eq!(path, "workers.orders.subnets");
    let (path, reason) = error_of(&text.replace("service = \"order-workers\"\n", ""));
    assert_eq!(path, "workers.orders.service");
    assert!(reason.contains("empty"), "{reason}");
}
