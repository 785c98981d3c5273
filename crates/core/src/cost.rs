//! Estimated cost of a run's attempts: vCPU-seconds and GB-seconds times a Fargate price.
//!
//! Fargate bills a task's configured vCPU and memory per second, with a one-minute minimum,
//! from the start of the image pull until the task stops. Prices differ by region,
//! architecture and purchase option, and change: the built-in table below holds Linux/x86
//! on-demand prices as published for a few regions (read 2026-03 from AWS's Fargate pricing
//! page as quoted by vantage.sh/blog/fargate-pricing and wring.co's 2026 guide: us-east-1
//! $0.04048 per vCPU-hour, $0.004445 per GB-hour). Fargate Spot prices move with supply; the
//! table assumes 30% of on-demand (AWS advertises "up to 70%" off). `[prices]` in the config
//! replaces the table for every region.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// USD per hour for one vCPU and one GB of memory, on-demand and on Fargate Spot.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub vcpu_hour: f64,
    pub gb_hour: f64,
    pub spot_vcpu_hour: f64,
    pub spot_gb_hour: f64,
}

/// Spot as a fraction of on-demand when the table has no Spot price of its own.
const SPOT_FRACTION: f64 = 0.3;

/// Linux/x86 on-demand prices by region (USD per vCPU-hour, per GB-hour), read 2026-03.
const TABLE: &[(&str, f64, f64)] = &[
    ("us-east-1", 0.04048, 0.004445),
    ("us-east-2", 0.04048, 0.004445),
    ("us-west-2", 0.04048, 0.004445),
    ("eu-west-1", 0.04048, 0.004445),
    ("eu-central-1", 0.04656, 0.00511),
    ("ap-northeast-1", 0.05056, 0.00553),
    ("ap-southeast-1", 0.05056, 0.00553),
];

/// The region whose prices stand in for a region missing from the table.
pub const FALLBACK_REGION: &str = "us-east-1";

impl Prices {
    /// The built-in prices for `region` (us-east-1's when the table lacks it), or the config's.
    pub fn for_region(region: &str, configured: Option<&Prices>) -> Prices {
        if let Some(prices) = configured {
            return *prices;
        }
        let (_, vcpu, gb) = TABLE
            .iter()
            .find(|(r, _, _)| *r == region)
            .or_else(|| TABLE.iter().find(|(r, _, _)| *r == FALLBACK_REGION))
            .copied()
            .unwrap_or((FALLBACK_REGION, 0.04048, 0.004445));
        Prices {
            vcpu_hour: vcpu,
            gb_hour: gb,
            spot_vcpu_hour: vcpu * SPOT_FRACTION,
            spot_gb_hour: gb * SPOT_FRACTION,
        }
    }
}

/// One attempt's estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub vcpu_seconds: f64,
    pub gb_seconds: f64,
    /// USD.
    pub usd: f64,
}

/// The billed seconds of a task that ran `seconds` (Fargate's one-minute minimum).
pub fn billed_seconds(seconds: i64) -> i64 {
    seconds.max(60)
}

/// The estimate for a task of `cpu` units (1024 = 1 vCPU) and `memory` MiB that was billed for
/// `seconds`, on Fargate Spot or not.
pub fn estimate(prices: &Prices, spot: bool, cpu: u32, memory: u32, seconds: i64) -> Estimate {
    let billed = billed_seconds(seconds) as f64;
    let vcpu_seconds = f64::from(cpu) / 1024.0 * billed;
    let gb_seconds = f64::from(memory) / 1024.0 * billed;
    let (vcpu_hour, gb_hour) = if spot {
        (prices.spot_vcpu_hour, prices.spot_gb_hour)
    } else {
        (prices.vcpu_hour, prices.gb_hour)
    };
    Estimate {
        vcpu_seconds,
        gb_seconds,
        usd: (vcpu_seconds * vcpu_hour + gb_seconds * gb_hour) / 3600.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_checked_by_hand() {
        // 1 vCPU (1024 units), 2 GB (2048 MiB), 10 minutes on-demand in us-east-1:
        // 600 vCPU-s × 0.04048 / 3600 = 0.0067467; 1200 GB-s × 0.004445 / 3600 = 0.0014817;
        // together 0.0082283 USD.
        let prices = Prices::for_region("us-east-1", None);
        let e = estimate(&prices, false, 1024, 2048, 600);
        assert_eq!(e.vcpu_seconds, 600.0);
        assert_eq!(e.gb_seconds, 1200.0);
        assert!((e.usd - 0.008_228_3).abs() < 1e-7, "{}", e.usd);
        // The same on Spot: 30% of it.
        let spot = estimate(&prices, true, 1024, 2048, 600);
        assert!((spot.usd - 0.002_468_5).abs() < 1e-7, "{}", spot.usd);
    }

    #[test]
    fn short_tasks_pay_a_minute_and_config_prices_win() {
        let prices = Prices {
            vcpu_hour: 3600.0,
            gb_hour: 0.0,
            spot_vcpu_hour: 0.0,
            spot_gb_hour: 0.0,
        };
        let chosen = Prices::for_region("eu-central-1", Some(&prices));
        assert_eq!(chosen, prices);
        // 5 s of 0.25 vCPU bills 60 s: 15 vCPU-s at 1 USD per vCPU-second.
        assert_eq!(estimate(&chosen, false, 256, 512, 5).usd, 15.0);
    }

    #[test]
    fn unknown_regions_use_us_east_1() {
        assert_eq!(
            Prices::for_region("xx-nowhere-9", None),
            Prices::for_region("us-east-1", None)
        );
        assert!(
            Prices::for_region("eu-central-1", None).vcpu_hour
                > Prices::for_region("us-east-1", None).vcpu_hour
        );
    }
}
