//! Writes the reference traces: `cargo run -p jobrunner-sim --example traces -- bench/traces [SEED]`.

use std::path::PathBuf;

use jobrunner_sim::trace::generate;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "bench/traces".into()));
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    std::fs::create_dir_all(&dir)?;
    for name in generate::NAMES {
        let trace = generate::by_name(name, seed).expect("known name");
        let path = dir.join(format!("{name}.csv"));
        trace.write_csv(std::io::BufWriter::new(std::fs::File::create(&path)?))?;
        println!(
            "{}: {} messages, {} rows, last arrival at {} s",
            path.display(),
            trace.total(),
            trace.points().len(),
            trace.last_arrival().unwrap_or(0)
        );
    }
    Ok(())
}
