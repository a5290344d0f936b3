//! Sizes a space may ask for: generous for real mobile and edge networks
//! (the built-in spaces stay far below), and small enough that a typo such
//! as a width of 10^9 is an error here rather than a failed allocation
//! later.

/// Input height and width (pixels).
pub(crate) const INPUT_PX: u32 = 1024;
/// Input channels.
pub(crate) const INPUT_CHANNELS: u32 = 64;
/// Classes of the classifier.
pub(crate) const CLASSES: u32 = 100_000;
/// Width (channels) of any layer, fixed or chosen.
pub(crate) const WIDTH: u32 = 8192;
/// Expansion ratio of a bottleneck.
pub(crate) const EXPANSION: u32 = 32;
/// Kernel size.
pub(crate) const KERNEL: u32 = 31;
/// Trainable parameters of the space's largest network (2 GB as f32).
pub(crate) const PARAMS: u64 = 500_000_000;

pub(crate) fn check(field: &str, value: u32, max: u32) -> Result<(), String> {
    if value > max {
        Err(format!(
            "{field} = {value} is too large: at most {max} is supported"
        ))
    } else {
        Ok(())
    }
}
