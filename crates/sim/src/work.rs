//! How long a task takes to process one message.

use std::fmt;
use std::str::FromStr;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Error;

/// Per-message processing time, in seconds. Written `10` (fixed), `exp:10` (exponential with
/// mean 10) or `uniform:5-15`. Durations are drawn once per message from the seed, so every
/// policy sees the same message take the same time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WorkTime {
    Fixed(f64),
    Exponential { mean: f64 },
    Uniform { low: f64, high: f64 },
}

impl WorkTime {
    /// The processing time of each of `count` messages, in whole seconds (at least 1).
    pub fn durations(&self, count: u64, seed: u64) -> Vec<u32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x005e_ed0f_3a11_4b3d);
        (0..count)
            .map(|_| {
                let seconds = match *self {
                    WorkTime::Fixed(s) => s,
                    WorkTime::Exponential { mean } => -mean * (1.0 - rng.random::<f64>()).ln(),
                    WorkTime::Uniform { low, high } => low + (high - low) * rng.random::<f64>(),
                };
                seconds.round().clamp(1.0, f64::from(u32::MAX)) as u32
            })
            .collect()
    }

    /// The mean processing time in seconds.
    pub fn mean(&self) -> f64 {
        match *self {
            WorkTime::Fixed(s) => s,
            WorkTime::Exponential { mean } => mean,
            WorkTime::Uniform { low, high } => (low + high) / 2.0,
        }
    }
}

impl Default for WorkTime {
    fn default() -> Self {
        WorkTime::Fixed(10.0)
    }
}

impl fmt::Display for WorkTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkTime::Fixed(s) => write!(f, "{s}"),
            WorkTime::Exponential { mean } => write!(f, "exp:{mean}"),
            WorkTime::Uniform { low, high } => write!(f, "uniform:{low}-{high}"),
        }
    }
}

impl FromStr for WorkTime {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let bad = || {
            Error::new(format!(
                "work time '{text}': use seconds (10), exp:MEAN or uniform:LOW-HIGH"
            ))
        };
        let number = |s: &str| -> Result<f64, Error> {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(bad)
        };
        let work = match text.split_once(':') {
            None => WorkTime::Fixed(number(text)?),
            Some(("exp", mean)) => WorkTime::Exponential {
                mean: number(mean)?,
            },
            Some(("uniform", range)) => {
                let (low, high) = range.split_once('-').ok_or_else(bad)?;
                let (low, high) = (number(low)?, number(high)?);
                if low > high {
                    return Err(bad());
                }
                WorkTime::Uniform { low, high }
            }
            Some(_) => return Err(bad()),
        };
        Ok(work)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!("10".parse::<WorkTime>().unwrap(), WorkTime::Fixed(10.0));
        assert_eq!(
            "exp:30".parse::<WorkTime>().unwrap(),
            WorkTime::Exponential { mean: 30.0 }
        );
        assert_eq!(
            "uniform:5-15".parse::<WorkTime>().unwrap(),
            WorkTime::Uniform {
                low: 5.0,
                high: 15.0
            }
        );
        for bad in ["", "0", "-3", "exp:", "uniform:9-3", "normal:3"] {
            assert!(bad.parse::<WorkTime>().is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_are_seeded_and_at_least_one_second() {
        let work = WorkTime::Exponential { mean: 20.0 };
        let a = work.durations(5000, 3);
        assert_eq!(a, work.durations(5000, 3));
        assert_ne!(a, work.durations(5000, 4));
        assert!(a.iter().all(|d| *d >= 1));
        let mean = a.iter().map(|d| f64::from(*d)).sum::<f64>() / a.len() as f64;
        assert!((18.0..22.0).contains(&mean), "{mean}");
        assert!(
            WorkTime::Uniform {
                low: 5.0,
                high: 15.0
            }
            .durations(100, 1)
            .iter()
            .all(|d| (5..=15).contains(d))
        );
    }
}
