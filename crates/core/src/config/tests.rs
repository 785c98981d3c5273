use super::*;

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
    assert_eq!(path, "triggers.schedule[1].name");
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
