//! Harness for end-to-end suites: starts etcd, local clusters, hubs and agents as real processes.
