//! The latency model of the simulated cluster: how long pulls, starts, readiness and scheduling
//! take, so that in-place updates, image pre-download and rollouts can be measured honestly.

use std::time::Duration;

/// Image sizes are declared in the image name: `size-<N>mb` anywhere in it (e.g.
/// `example.com/big:1.0-size-300mb`) sets the simulated size. Images without it weigh [`LatencyModel::default_image_mb`].
pub const IMAGE_SIZE_MARKER: &str = "size-";

/// Images whose name contains this marker cannot be pulled (the pull fails with `ErrImagePull`).
pub const UNPULLABLE_MARKER: &str = "unpullable";

/// Pod annotation: the main containers exit after this many seconds (job-like pods).
pub const RUN_SECONDS_ANNOTATION: &str = "kruise-local.kruise.io/run-seconds";
/// Pod annotation: the exit code of containers that exit (default 0).
pub const EXIT_CODE_ANNOTATION: &str = "kruise-local.kruise.io/exit-code";

#[derive(Clone, Debug, PartialEq)]
pub struct LatencyModel {
    /// Simulated pull time per megabyte of image.
    pub image_pull_ms_per_mb: u64,
    /// Size of an image that declares none.
    pub default_image_mb: u64,
    /// Time from "Created" to "Started" for a container.
    pub container_start_ms: u64,
    /// Time after start before a container reports ready.
    pub readiness_delay_ms: u64,
    /// Delay before the scheduler binds a pod.
    pub schedule_delay_ms: u64,
    /// Time a container takes to stop after it is asked to (bounded by the grace period).
    pub container_stop_ms: u64,
}

impl Default for LatencyModel {
    fn default() -> Self {
        LatencyModel {
            image_pull_ms_per_mb: 2,
            default_image_mb: 50,
            container_start_ms: 100,
            readiness_delay_ms: 200,
            schedule_delay_ms: 0,
            container_stop_ms: 100,
        }
    }
}

impl LatencyModel {
    /// Everything instant: the ceiling measurements are compared against.
    pub fn zero() -> Self {
        LatencyModel {
            image_pull_ms_per_mb: 0,
            default_image_mb: 0,
            container_start_ms: 0,
            readiness_delay_ms: 0,
            schedule_delay_ms: 0,
            container_stop_ms: 0,
        }
    }

    /// Simulated size of an image in megabytes.
    pub fn image_mb(&self, image: &str) -> u64 {
        image
            .match_indices(IMAGE_SIZE_MARKER)
            .find_map(|(at, marker)| {
                let rest = &image[at + marker.len()..];
                let digits =
                    rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                rest[digits..]
                    .starts_with("mb")
                    .then(|| rest[..digits].parse().ok())
                    .flatten()
            })
            .unwrap_or(self.default_image_mb)
    }

    /// How long pulling `image` takes when it is not cached.
    pub fn pull_time(&self, image: &str) -> Duration {
        Duration::from_millis(self.image_mb(image) * self.image_pull_ms_per_mb)
    }

    pub fn container_start(&self) -> Duration {
        Duration::from_millis(self.container_start_ms)
    }

    pub fn readiness_delay(&self) -> Duration {
        Duration::from_millis(self.readiness_delay_ms)
    }

    pub fn schedule_delay(&self) -> Duration {
        Duration::from_millis(self.schedule_delay_ms)
    }

    pub fn container_stop(&self, grace: Duration) -> Duration {
        Duration::from_millis(self.container_stop_ms).min(grace)
    }
}

/// Whether pulling `image` fails.
pub fn is_unpullable(image: &str) -> bool {
    image.contains(UNPULLABLE_MARKER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_size_comes_from_the_name() {
        let m = LatencyModel {
            image_pull_ms_per_mb: 10,
            default_image_mb: 50,
            ..LatencyModel::default()
        };
        assert_eq!(m.image_mb("example.com/big:1.0-size-300mb"), 300);
        assert_eq!(m.image_mb("example.com/size-20mb/app:v1"), 20);
        assert_eq!(m.image_mb("nginx:1.25"), 50);
        assert_eq!(
            m.pull_time("example.com/big:1.0-size-300mb"),
            Duration::from_millis(3000)
        );
    }

    #[test]
    fn unpullable_images_are_marked_by_name() {
        assert!(is_unpullable("example.com/unpullable:v1"));
        assert!(!is_unpullable("example.com/app:v1"));
    }
}
