//! The parts of the `musket` binary that other front ends and tests use directly: the readers
//! of untrusted files (.npy inputs, the cluster file) and private training's orchestration.

pub mod agreement;
pub mod config;
pub mod files;
pub mod npy;
pub mod training;
pub mod yao;
