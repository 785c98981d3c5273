//! The build script of every Lambda function crate (`build = "../lambda/build/link.rs"`): links
//! the function's `bootstrap` as a position-dependent executable (`-no-pie`) on Linux.
//!
//! Why: a position-independent executable is relocated by the dynamic loader at every start, and
//! with the AWS SDK inside, that is ~56,000 pointers spread over ~1.4 MB of `.data.rel.ro`: each of
//! those ~350 pages is copied on write, one page fault each, before `main` runs. That was most of
//! the functions' init over the hello-world floor (`bench/RESULTS.md`, cold start). Linked at a
//! fixed address, those pages are mapped from the file and faulted in only when read.
//!
//! The cost: the executable's own image is not placed at a random address (the stack, heap,
//! shared libraries and every mapping still are). Set `JOBRUNNER_PIE=1` when building to keep
//! a position-independent executable.

fn main() {
    println!("cargo:rerun-if-env-changed=JOBRUNNER_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let pie = std::env::var("JOBRUNNER_PIE").is_ok_and(|v| !v.is_empty() && v != "0");
    if linux && !pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
