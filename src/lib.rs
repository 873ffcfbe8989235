//! Root package: owns the black-box tests (`tests/`) and benchmarks (`benches/`).
