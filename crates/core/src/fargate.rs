//! Fargate's valid task-level CPU/memory combinations.

/// Returns true when `memory` MiB is a valid pairing for `cpu` units on Fargate.
pub fn is_valid_pair(cpu: u32, memory: u32) -> bool {
    let (min, max, step) = match cpu {
        256 => return matches!(memory, 512 | 1024 | 2048),
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122880, 8192),
        _ => return false,
    };
    (min..=max).contains(&memory) && memory.is_multiple_of(step)
}

/// The largest memory (MiB) Fargate pairs with `cpu` units.
pub fn max_memory(cpu: u32) -> Option<u32> {
    Some(match cpu {
        256 => 2048,
        512 => 4096,
        1024 => 8192,
        2048 => 16384,
        4096 => 30720,
        8192 => 61440,
        16384 => 122880,
        _ => return None,
    })
}

/// Twice `memory`, capped at the largest valid memory for `cpu` and rounded down to a valid
/// pair; `None` when the task cannot grow (already at the largest, or `cpu` is not Fargate's).
pub fn doubled_memory(cpu: u32, memory: u32) -> Option<u32> {
    let max = max_memory(cpu)?;
    let mut grown = memory.saturating_mul(2).min(max);
    while grown > memory && !is_valid_pair(cpu, grown) {
        grown -= 1;
    }
    (grown > memory).then_some(grown)
}

/// The valid memory values for `cpu`, for error messages.
pub fn describe_valid_memory(cpu: u32) -> String {
    match cpu {
        256 => "512, 1024 or 2048".into(),
        512 => "1024 to 4096 in steps of 1024".into(),
        1024 => "2048 to 8192 in steps of 1024".into(),
        2048 => "4096 to 16384 in steps of 1024".into(),
        4096 => "8192 to 30720 in steps of 1024".into(),
        8192 => "16384 to 61440 in steps of 4096".into(),
        16384 => "32768 to 122880 in steps of 8192".into(),
        _ => "none: cpu must be 256, 512, 1024, 2048, 4096, 8192 or 16384".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_doubles_up_to_the_largest_pair() {
        assert_eq!(doubled_memory(256, 512), Some(1024));
        assert_eq!(doubled_memory(256, 2048), None);
        assert_eq!(doubled_memory(512, 3072), Some(4096));
        assert_eq!(doubled_memory(4096, 16384), Some(30720));
        assert_eq!(doubled_memory(8192, 20480), Some(40960));
        assert_eq!(doubled_memory(8192, 40960), Some(61440));
        assert_eq!(doubled_memory(300, 512), None);
        for cpu in [256, 512, 1024, 2048, 4096, 8192, 16384] {
            let max = max_memory(cpu).unwrap();
            assert!(is_valid_pair(cpu, max), "{cpu}/{max}");
            assert!(!is_valid_pair(cpu, max + 1024));
        }
    }

    #[test]
    fn accepts_documented_pairs() {
        for (cpu, memory) in [
            (256, 512),
            (256, 2048),
            (512, 1024),
            (1024, 8192),
            (2048, 16384),
            (4096, 30720),
            (8192, 61440),
            (16384, 122880),
        ] {
            assert!(is_valid_pair(cpu, memory), "{cpu}/{memory}");
        }
    }

    #[test]
    fn rejects_other_pairs() {
        for (cpu, memory) in [
            (256, 4096),
            (512, 512),
            (1024, 1536),
            (2048, 2048),
            (8192, 18432),
            (300, 1024),
            (16384, 131072),
        ] {
            assert!(!is_valid_pair(cpu, memory), "{cpu}/{memory}");
        }
    }
}
