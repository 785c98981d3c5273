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
