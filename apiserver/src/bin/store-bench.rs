//! Store benchmark: creates/s, write-to-watch latency and memory per stored value, for the memory
//! store and for an etcd store over a throwaway etcd, with raw etcd-client puts as the baseline.
//!
//! Run: `cargo run --release -p kruise-apiserver --bin store-bench -- [flags]` (needs Debian
//! `etcd-server` for the etcd figures; they are skipped with a message otherwise). `--help` lists
//! the flags.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use futures::StreamExt;
use kruise_apiserver::store::etcd_process::{EtcdProcess, EtcdProcessError};
use kruise_apiserver::store::{EtcdStore, MemoryStore, Store, WriteBatching};

const USAGE: &str = "\
store-bench: store write throughput, watch latency and memory per value

Usage: store-bench [flags]

  --etcd-only            skip the memory store figures
  --creates-only         etcd: only the creates/s rounds (no watch latency, no server RSS)
  --creates N            objects created per measurement (default 10000)
  --rounds N             alternating raw-put / raw-txn / store rounds on etcd (default 2)
  --batch-ops N          etcd store: most writes per transaction (default 128)
  --batch-in-flight N    etcd store: most write transactions outstanding (default 1)
  --no-batching          etcd store: one transaction per write
  --help                 this text
";

/// Command-line settings.
struct Flags {
    etcd_only: bool,
    creates_only: bool,
    creates: usize,
    rounds: usize,
    batching: WriteBatching,
}

impl Flags {
    fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Self>> {
        let mut flags = Flags {
            etcd_only: false,
            creates_only: false,
            creates: CREATES,
            rounds: ROUNDS,
            batching: WriteBatching::default(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut number = |name: &str| -> anyhow::Result<usize> {
                let value = args
                    .next()
                    .with_context(|| format!("{name} needs a value"))?;
                let n: usize = value
                    .parse()
                    .with_context(|| format!("{name} {value:?} is not a number"))?;
                anyhow::ensure!(n > 0, "{name} must be at least 1");
                Ok(n)
            };
            match arg.as_str() {
                "--help" | "-h" => return Ok(None),
                "--etcd-only" => flags.etcd_only = true,
                "--creates-only" => flags.creates_only = true,
                "--creates" => flags.creates = number("--creates")?,
                "--rounds" => flags.rounds = number("--rounds")?,
                "--batch-ops" => flags.batching.max_ops = number("--batch-ops")?,
                "--batch-in-flight" => flags.batching.max_in_flight = number("--batch-in-flight")?,
                "--no-batching" => flags.batching = WriteBatching::disabled(),
                other => bail!("unknown flag {other:?}\n\n{USAGE}"),
            }
        }
        Ok(Some(flags))
    }
}

const CLIENTS: usize = 16;
const CREATES: usize = 10_000;
const ROUNDS: usize = 2;
const WATCHERS: usize = 100;
const WATCHED_WRITES: usize = 1_000;
const WRITE_INTERVAL: Duration = Duration::from_millis(2);
const MEMORY_VALUES: usize = 100_000;

/// Resident set size of process `pid` (or this process) in bytes, from `/proc/<pid>/statm`.
fn rss_bytes(pid: Option<u32>) -> anyhow::Result<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/statm"),
        None => "/proc/self/statm".to_owned(),
    };
    let statm = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .context("statm without a resident field")?
        .parse()
        .context("statm resident field")?;
    // x86-64 and aarch64 Linux as deployed here use 4 KiB pages.
    Ok(pages * 4096)
}

/// A pod-like JSON object of about 2 KB.
fn pod_json(i: usize) -> Bytes {
    let container = |n: usize| {
        format!(
            r#"{{"name":"c{n}","image":"registry.example.com/team/app:v1.{i}","ports":[{{"containerPort":8080,"protocol":"TCP"}}],"env":[{{"name":"MODE","value":"production"}},{{"name":"REPLICA","value":"{i}"}}],"resources":{{"requests":{{"cpu":"100m","memory":"128Mi"}},"limits":{{"cpu":"500m","memory":"256Mi"}}}},"volumeMounts":[{{"name":"config","mountPath":"/etc/app"}},{{"name":"kube-api-access-{i}","mountPath":"/var/run/secrets/kubernetes.io/serviceaccount","readOnly":true}}],"readinessProbe":{{"httpGet":{{"path":"/healthz","port":8080}},"periodSeconds":10}},"terminationMessagePath":"/dev/termination-log","imagePullPolicy":"IfNotPresent"}}"#
        )
    };
    let json = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"app-{i:06}","namespace":"bench","uid":"5f0c2a1e-0000-4000-8000-{i:012}","resourceVersion":"{i}","creationTimestamp":"2026-01-01T00:00:00Z","labels":{{"app":"app","pod-template-hash":"7d9f8c6b5","apps.kruise.io/controller-revision-hash":"app-7d9f8c6b5"}},"ownerReferences":[{{"apiVersion":"apps.kruise.io/v1alpha1","kind":"CloneSet","name":"app","uid":"0b0c2a1e-0000-4000-8000-000000000001","controller":true,"blockOwnerDeletion":true}}]}},"spec":{{"containers":[{},{}],"volumes":[{{"name":"config","configMap":{{"name":"app-config"}}}}],"nodeName":"node-{}","restartPolicy":"Always","terminationGracePeriodSeconds":30}},"status":{{"phase":"Running","podIP":"10.0.{}.{}","conditions":[{{"type":"Ready","status":"True","lastTransitionTime":"2026-01-01T00:00:00Z"}}]}}}}"#,
        container(0),
        container(1),
        i % 50,
        (i / 256) % 256,
        i % 256,
    );
    Bytes::from(json)
}

/// Creates `count` small objects under `prefix` from `CLIENTS` tasks; returns creates per second.
async fn creates_per_second<S: Store>(
    store: Arc<S>,
    prefix: &str,
    count: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let store = store.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in (client..count).step_by(CLIENTS) {
                let value = Bytes::from(format!(r#"{{"kind":"ConfigMap","data":{{"i":"{i}"}}}}"#));
                store.create(&format!("{prefix}{i:06}"), value).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Raw etcd-client puts from `CLIENTS` tasks; returns puts per second.
async fn raw_puts_per_second(
    client: &etcd_client::Client,
    count: usize,
    round: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CLIENTS {
        let mut kv = client.kv_client();
        tasks.push(tokio::spawn(async move {
            for i in (worker..count).step_by(CLIENTS) {
                let value = format!(r#"{{"kind":"ConfigMap","data":{{"i":"{i}"}}}}"#);
                kv.put(format!("/raw/{round}/{i:06}"), value, None).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Raw etcd-client create-if-absent transactions (the store's create, minus the store) per second.
async fn raw_txns_per_second(
    client: &etcd_client::Client,
    count: usize,
    round: usize,
) -> anyhow::Result<f64> {
    use etcd_client::{Compare, CompareOp, Txn, TxnOp};
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CLIENTS {
        let mut kv = client.kv_client();
        tasks.push(tokio::spawn(async move {
            for i in (worker..count).step_by(CLIENTS) {
                let key = format!("/rawtxn/{round}/{i:06}");
                let value = format!(r#"{{"kind":"ConfigMap","data":{{"i":"{i}"}}}}"#);
                let txn = Txn::new()
                    .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key, value, None)]);
                kv.txn(txn).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// p50 and p99 (in ms) of write-start to event-receipt with `WATCHERS` watchers.
async fn watch_latency<S: Store>(store: Arc<S>, prefix: &str) -> anyhow::Result<(f64, f64)> {
    let base = Instant::now();
    let start = store.current_revision().await?;
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let mut stream = store.watch(prefix, start).await?;
        watchers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(WATCHED_WRITES);
            while latencies.len() < WATCHED_WRITES {
                let event = match stream.next().await {
                    Some(event) => event?,
                    None => bail!("watch ended early"),
                };
                let received = base.elapsed().as_nanos() as u64;
                let sent: u64 = std::str::from_utf8(&event.kv.value)?.parse()?;
                latencies.push(received.saturating_sub(sent));
            }
            Ok(latencies)
        }));
    }
    let mut ticks = tokio::time::interval(WRITE_INTERVAL);
    for i in 0..WATCHED_WRITES {
        ticks.tick().await;
        let sent = base.elapsed().as_nanos() as u64;
        store
            .create(&format!("{prefix}{i:06}"), Bytes::from(sent.to_string()))
            .await?;
    }
    let mut all = Vec::with_capacity(WATCHERS * WATCHED_WRITES);
    for watcher in watchers {
        all.extend(tokio::time::timeout(Duration::from_secs(60), watcher).await???);
    }
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1e6;
    Ok((pct(0.50), pct(0.99)))
}

/// Stores `MEMORY_VALUES` pod-sized values; returns the RSS growth of `pid` (None = this process).
async fn memory_growth<S: Store>(store: Arc<S>, pid: Option<u32>) -> anyhow::Result<u64> {
    let before = rss_bytes(pid)?;
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in (client..MEMORY_VALUES).step_by(CLIENTS) {
                store
                    .create(
                        &format!("/registry/core/pods/bench/app-{i:06}"),
                        pod_json(i),
                    )
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(rss_bytes(pid)?.saturating_sub(before))
}

/// Creates `MEMORY_VALUES` pods from `CLIENTS` tasks; returns creates/s and the slowest create.
async fn pod_writes<S: Store>(store: Arc<S>) -> anyhow::Result<(f64, Duration)> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            for i in (client..MEMORY_VALUES).step_by(CLIENTS) {
                let value = pod_json(i);
                let write = Instant::now();
                store
                    .create(&format!("/registry/core/pods/bench/app-{i:06}"), value)
                    .await?;
                slowest = slowest.max(write.elapsed());
            }
            anyhow::Ok(slowest)
        }));
    }
    let mut slowest = Duration::ZERO;
    for task in tasks {
        slowest = slowest.max(task.await??);
    }
    Ok((
        MEMORY_VALUES as f64 / started.elapsed().as_secs_f64(),
        slowest,
    ))
}

fn per_value(bytes: u64) -> String {
    format!(
        "{:.0} MiB total, {:.0} bytes/value",
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / MEMORY_VALUES as f64
    )
}

async fn memory_figures(creates: usize) -> anyhow::Result<()> {
    // First, before other runs leave freed heap behind that the allocator would reuse.
    let growth = memory_growth(Arc::new(MemoryStore::new()), None).await?;
    println!(
        "memory            RSS for {MEMORY_VALUES} pods: {}",
        per_value(growth)
    );

    let memory = Arc::new(MemoryStore::new());
    let rate = creates_per_second(memory.clone(), "/registry/configmaps/bench/", creates).await?;
    println!("memory            creates/s: {rate:>10.0}");
    let (p50, p99) = watch_latency(memory.clone(), "/registry/watch/").await?;
    println!("memory            watch latency: p50 {p50:.3} ms, p99 {p99:.3} ms");
    drop(memory);

    let dir = std::env::temp_dir().join(format!("store-bench-{}", std::process::id()));
    let persistent = Arc::new(MemoryStore::open(&dir)?);
    let rate =
        creates_per_second(persistent.clone(), "/registry/configmaps/bench/", creates).await?;
    println!("memory+log ({})  creates/s: {rate:>10.0}", dir.display());
    let (p50, p99) = watch_latency(persistent.clone(), "/registry/watch/").await?;
    println!("memory+log        watch latency: p50 {p50:.3} ms, p99 {p99:.3} ms");
    drop(persistent);
    let _ = std::fs::remove_dir_all(&dir);

    // Snapshots run on the write path: the slowest write shows what one costs at this size.
    let persistent = Arc::new(MemoryStore::open(&dir)?);
    let (rate, slowest) = pod_writes(persistent.clone()).await?;
    println!(
        "memory+log        {MEMORY_VALUES} pod creates: {rate:.0}/s, slowest write {:.0} ms (includes snapshots)",
        slowest.as_secs_f64() * 1e3
    );
    drop(persistent);
    let reopen = Instant::now();
    let recovered = MemoryStore::open(&dir)?;
    println!(
        "memory+log        reopen with {MEMORY_VALUES} pods: {:.0} ms (revision {})",
        reopen.elapsed().as_secs_f64() * 1e3,
        recovered.current_revision().await?
    );
    drop(recovered);
    let _ = std::fs::remove_dir_all(&dir);

    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(flags) = Flags::parse(std::env::args().skip(1))? else {
        print!("{USAGE}");
        return Ok(());
    };
    let creates = flags.creates;
    println!("store-bench: {CLIENTS} clients, {creates} creates; {WATCHERS} watchers x {WATCHED_WRITES} writes every {WRITE_INTERVAL:?}; {MEMORY_VALUES} pod values (~{} bytes)", pod_json(0).len());

    if !flags.etcd_only {
        memory_figures(creates).await?;
    }
    let etcd = match EtcdProcess::start().await {
        Ok(etcd) => etcd,
        Err(EtcdProcessError::NotInstalled) => {
            println!("skipping etcd figures: etcd not installed (apt-get install etcd-server)");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    println!(
        "etcd at {} (data dir on tmpfs when /dev/shm exists)",
        etcd.endpoint()
    );
    let store = Arc::new(
        EtcdStore::connect(&[etcd.endpoint()], "")
            .await?
            .with_write_batching(flags.batching),
    );
    println!(
        "etcd store        write batching: {:?}",
        store.write_batching()
    );
    // Alternate baseline and store rounds so that neither profits from a warmer or emptier etcd.
    let (mut raw, mut raw_txn, mut rate) = (0f64, 0f64, 0f64);
    let mut ratios = Vec::new();
    for round in 0..flags.rounds {
        let r = raw_puts_per_second(store.client(), creates, round).await?;
        let t = raw_txns_per_second(store.client(), creates, round).await?;
        let before = store.write_batch_stats();
        let s = creates_per_second(
            store.clone(),
            &format!("/registry/configmaps/round{round}/"),
            creates,
        )
        .await?;
        let after = store.write_batch_stats();
        let txns = after.txns - before.txns;
        println!(
            "etcd round {round}      raw puts/s {r:>8.0}, raw create txns/s {t:>8.0}, store creates/s {s:>8.0} = {:.0}% of raw puts ({txns} txns, {:.1} writes/txn)",
            100.0 * s / r,
            (after.committed - before.committed) as f64 / txns.max(1) as f64
        );
        ratios.push(s / r);
        raw = raw.max(r);
        raw_txn = raw_txn.max(t);
        rate = rate.max(s);
    }
    ratios.sort_by(f64::total_cmp);
    println!("etcd raw put      puts/s:    {raw:>10.0} (best round)");
    println!("etcd raw txn      txns/s:    {raw_txn:>10.0} (best round; create-if-absent)");
    println!(
        "etcd store        creates/s: {rate:>10.0} (best round, {:.0}% of raw puts, {:.0}% of raw create txns)",
        100.0 * rate / raw,
        100.0 * rate / raw_txn
    );
    println!(
        "etcd store        per-round ratio to raw puts of the same round: min {:.0}%, max {:.0}%",
        100.0 * ratios[0],
        100.0 * ratios[ratios.len() - 1]
    );
    if flags.creates_only {
        return Ok(());
    }
    let (p50, p99) = watch_latency(store.clone(), "/registry/watch/").await?;
    println!("etcd store        watch latency: p50 {p50:.3} ms, p99 {p99:.3} ms");
    let server = memory_growth(store.clone(), Some(etcd.pid())).await?;
    println!(
        "etcd server       RSS for {MEMORY_VALUES} pods: {}",
        per_value(server)
    );
    Ok(())
}
