//! Traffic traces: how many messages arrive in each second.
//!
//! The CSV form has the header `time_s,arrivals` and one row per second that has arrivals
//! (seconds without a row have none). [`generate`] makes the reference traces in
//! `bench/traces/` from a seed.

use std::io::{Read, Write};
use std::path::Path;

use crate::Error;

/// Arrivals per second, sorted by time, one entry per second that has any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    points: Vec<(u64, u32)>,
}

impl Trace {
    /// Builds a trace from `(second, arrivals)` pairs in any order; repeated seconds add up and
    /// zero counts are dropped.
    pub fn new(points: impl IntoIterator<Item = (u64, u32)>) -> Trace {
        let mut points: Vec<(u64, u32)> = points.into_iter().filter(|(_, n)| *n > 0).collect();
        points.sort_by_key(|(t, _)| *t);
        let mut merged: Vec<(u64, u32)> = Vec::with_capacity(points.len());
        for (t, n) in points {
            match merged.last_mut() {
                Some((last, count)) if *last == t => *count = count.saturating_add(n),
                _ => merged.push((t, n)),
            }
        }
        Trace { points: merged }
    }

    /// The `(second, arrivals)` pairs, oldest first.
    pub fn points(&self) -> &[(u64, u32)] {
        &self.points
    }

    /// Total number of messages.
    pub fn total(&self) -> u64 {
        self.points.iter().map(|(_, n)| u64::from(*n)).sum()
    }

    /// The second of the first arrival.
    pub fn first_arrival(&self) -> Option<u64> {
        self.points.first().map(|(t, _)| *t)
    }

    /// The second of the last arrival.
    pub fn last_arrival(&self) -> Option<u64> {
        self.points.last().map(|(t, _)| *t)
    }

    /// Reads the CSV form (`time_s,arrivals` header).
    pub fn from_csv(reader: impl Read) -> Result<Trace, Error> {
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(reader);
        let headers = csv
            .headers()
            .map_err(|e| Error::new(format!("trace: {e}")))?
            .clone();
        if headers.len() != 2 || &headers[0] != "time_s" || &headers[1] != "arrivals" {
            return Err(Error::new(format!(
                "trace: the header must be `time_s,arrivals`, found `{}`",
                headers.iter().collect::<Vec<_>>().join(",")
            )));
        }
        let mut points = Vec::new();
        for (i, record) in csv.records().enumerate() {
            let line = i + 2;
            let record = record.map_err(|e| Error::new(format!("trace line {line}: {e}")))?;
            let field = |n: usize, what: &str| -> Result<u64, Error> {
                record[n].parse::<u64>().map_err(|_| {
                    Error::new(format!(
                        "trace line {line}: {what} '{}' is not a whole number ≥ 0",
                        &record[n]
                    ))
                })
            };
            let time = field(0, "time_s")?;
            let arrivals = u32::try_from(field(1, "arrivals")?)
                .map_err(|_| Error::new(format!("trace line {line}: arrivals too large")))?;
            points.push((time, arrivals));
        }
        Ok(Trace::new(points))
    }

    /// Reads a CSV trace file.
    pub fn load(path: &Path) -> Result<Trace, Error> {
        let file = std::fs::File::open(path)
            .map_err(|e| Error::new(format!("{}: cannot read: {e}", path.display())))?;
        Trace::from_csv(file).map_err(|e| Error::new(format!("{}: {e}", path.display())))
    }

    /// Writes the CSV form.
    pub fn write_csv(&self, mut writer: impl Write) -> std::io::Result<()> {
        writeln!(writer, "time_s,arrivals")?;
        for (t, n) in &self.points {
            writeln!(writer, "{t},{n}")?;
        }
        Ok(())
    }
}

/// The reference traces (`bench/traces/`), deterministic for a seed.
pub mod generate {
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::Trace;

    /// The names [`by_name`] knows, in the order the benchmarks show them.
    pub const NAMES: [&str; 4] = ["burst", "diurnal", "trickle", "spiky"];

    /// One of the reference traces by name.
    pub fn by_name(name: &str, seed: u64) -> Option<Trace> {
        Some(match name {
            "burst" => burst(),
            "diurnal" => diurnal(seed),
            "trickle" => trickle(seed),
            "spiky" => spiky(seed),
            _ => return None,
        })
    }

    /// A single burst: 1,000 messages within 10 seconds, one minute in, on an idle queue.
    pub fn burst() -> Trace {
        Trace::new((60..70).map(|t| (t, 100)))
    }

    /// A day of traffic: Poisson arrivals whose rate follows the sun, from 0.01 messages/s at
    /// midnight to 0.5/s at noon (about 22,000 messages).
    pub fn diurnal(seed: u64) -> Trace {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let day = 86_400.0_f64;
        Trace::new((0..86_400u64).map(|t| {
            let phase = (1.0 - (2.0 * std::f64::consts::PI * t as f64 / day).cos()) / 2.0;
            (t, poisson(&mut rng, 0.01 + 0.49 * phase))
        }))
    }

    /// A trickle: one message every 2 to 6 minutes for 6 hours.
    pub fn trickle(seed: u64) -> Trace {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(1));
        let mut points = Vec::new();
        let mut t = rng.random_range(120..=360u64);
        while t < 6 * 3600 {
            points.push((t, 1));
            t += rng.random_range(120..=360u64);
        }
        Trace::new(points)
    }

    /// Spiky: a light background (one message every 1 to 3 minutes) with a spike of 100 to
    /// 400 messages within 5 to 30 seconds every 20 to 60 minutes, for 6 hours.
    pub fn spiky(seed: u64) -> Trace {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(2));
        let horizon = 6 * 3600;
        let mut points = Vec::new();
        let mut t = rng.random_range(60..=180u64);
        while t < horizon {
            points.push((t, 1));
            t += rng.random_range(60..=180u64);
        }
        let mut spike = rng.random_range(600..=1800u64);
        while spike < horizon {
            let size: u32 = rng.random_range(100..=400);
            let spread: u32 = rng.random_range(5..=30);
            for i in 0..spread {
                let share = size / spread + u32::from(i < size % spread);
                points.push((spike + u64::from(i), share));
            }
            spike += rng.random_range(1200..=3600u64);
        }
        Trace::new(points)
    }

    /// A Poisson-distributed count with mean `lambda` (Knuth's method; small means only).
    pub(crate) fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> u32 {
        let limit = (-lambda).exp();
        let mut product: f64 = rng.random();
        let mut k = 0;
        while product > limit {
            k += 1;
            product *= rng.random::<f64>();
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trip_merges_and_sorts() {
        let trace = Trace::new([(5, 2), (1, 1), (5, 3), (9, 0)]);
        assert_eq!(trace.points(), &[(1, 1), (5, 5)]);
        let mut out = Vec::new();
        trace.write_csv(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "time_s,arrivals\n1,1\n5,5\n"
        );
        assert_eq!(Trace::from_csv(out.as_slice()).unwrap(), trace);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let e = Trace::from_csv("time,count\n1,2\n".as_bytes()).unwrap_err();
        assert!(e.to_string().contains("time_s,arrivals"), "{e}");
        let e = Trace::from_csv("time_s,arrivals\n1,2\n3,x\n".as_bytes()).unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }

    #[test]
    fn generators_are_deterministic_and_shaped() {
        assert_eq!(generate::diurnal(7), generate::diurnal(7));
        assert_eq!(generate::burst().total(), 1000);
        let trickle = generate::trickle(1);
        assert!(
            trickle
                .points()
                .windows(2)
                .all(|w| (120..=360).contains(&(w[1].0 - w[0].0)))
        );
        let day = generate::diurnal(1);
        let night: u64 = day
            .points()
            .iter()
            .filter(|(t, _)| *t < 3600)
            .map(|(_, n)| u64::from(*n))
            .sum();
        let noon: u64 = day
            .points()
            .iter()
            .filter(|(t, _)| (41_400..45_000).contains(t))
            .map(|(_, n)| u64::from(*n))
            .sum();
        assert!(noon > 20 * night.max(1), "noon {noon}, night {night}");
        assert!((15_000..30_000).contains(&day.total()), "{}", day.total());
        let spiky = generate::spiky(1);
        assert!(spiky.points().iter().any(|(_, n)| *n >= 3), "has spikes");
    }
}
