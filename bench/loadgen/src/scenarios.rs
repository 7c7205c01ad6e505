//! The scenarios. Each: set-up (not measured), a warm-up, the `measure-start`
//! checkpoint, the measured phase, the `measure-end` checkpoint, and checks
//! after it where there are any. Every loop stops at a count and a deadline.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::link::{sockjs_next, Kind, Link, Ws};
use crate::sockjs::{broadcast_payload, parse_broadcast, payload};
use crate::stats::Stats;
use crate::{Control, Opts, Report};

/// One client session and the sequence number of its next payload.
struct Peer {
    id: usize,
    link: Link,
    seq: u64,
}

/// A session id no earlier run against the same server used.
fn session_id(tag: &str, i: usize) -> String {
    format!("{tag}{}-{i}", std::process::id())
}

/// Opens sessions `0..n` of `kind`, `concurrency` at a time; failures are
/// counted in the returned stats, successes recorded with their open time.
async fn open_many(o: &Opts, kind: Kind, prefix: &str, tag: &str, n: usize) -> (Vec<Peer>, Stats) {
    let results: Vec<_> = stream::iter(0..n)
        .map(|i| async move {
            let started = Instant::now();
            let link = Link::open(kind, o.port, prefix, &session_id(tag, i), o.limit).await;
            (i, link, started.elapsed())
        })
        .buffer_unordered(o.concurrency)
        .collect()
        .await;
    let mut stats = Stats::default();
    let mut peers = Vec::with_capacity(n);
    for (id, link, took) in results {
        match link {
            Ok(link) => {
                stats.record(took);
                peers.push(Peer { id, link, seq: 0 });
            }
            Err(e) => stats.error(format!("open {tag}{id}: {e}")),
        }
    }
    peers.sort_by_key(|p| p.id);
    (peers, stats)
}

/// Runs one session's echo loop until `deadline` or `cap` messages, then
/// waits for what is still in flight. The peer comes back unless it failed.
async fn echo_session(mut peer: Peer, o: Opts, deadline: Instant, cap: u64) -> (Option<Peer>, Stats) {
    let mut stats = Stats::default();
    let mut pending: VecDeque<(String, Instant)> = VecDeque::with_capacity(o.inflight);
    let mut sent = 0u64;
    let mut batch = Vec::with_capacity(o.inflight);
    let mut got = Vec::new();
    let hard_deadline = deadline + o.limit;
    // Each round trip either takes one message off `pending` or fails, so
    // `cap` plus what a frame can carry bounds the loop.
    for _round in 0..=(cap + o.inflight as u64) {
        batch.clear();
        let now = Instant::now();
        while pending.len() < o.inflight && sent < cap && now < deadline {
            let p = payload(peer.id, peer.seq, o.size);
            peer.seq += 1;
            sent += 1;
            pending.push_back((p.clone(), now));
            batch.push(p);
        }
        if !batch.is_empty() {
            if let Err(e) = peer.link.send(&batch, o.limit).await {
                stats.error(format!("session {}: {e}", peer.id));
                return (None, stats);
            }
        }
        if pending.is_empty() {
            return (Some(peer), stats);
        }
        if now > hard_deadline {
            stats.error(format!("session {}: echoes still missing after the deadline", peer.id));
            return (None, stats);
        }
        got.clear();
        if let Err(e) = peer.link.recv(&mut got, o.limit).await {
            stats.error(format!("session {}: {e}", peer.id));
            return (None, stats);
        }
        for message in got.drain(..) {
            match pending.pop_front() {
                Some((expected, at)) if expected == message => stats.record(at.elapsed()),
                Some((expected, _)) => {
                    stats.error(format!("session {}: expected {expected:?}, got {message:?}", peer.id));
                    return (None, stats);
                }
                None => {
                    stats.error(format!("session {}: unexpected message {message:?}", peer.id));
                    return (None, stats);
                }
            }
        }
    }
    stats.error(format!("session {}: round limit reached", peer.id));
    (None, stats)
}

/// All peers run their echo loops at once for `run_for` (or `cap` messages
/// in all); returns the peers still usable, the stats and the elapsed time.
async fn echo_phase(peers: Vec<Peer>, o: &Opts, run_for: Duration, cap: u64) -> (Vec<Peer>, Stats, Duration) {
    let started = Instant::now();
    let deadline = started + run_for;
    let per_session = cap.div_ceil(peers.len().max(1) as u64).max(1);
    let tasks: Vec<_> = peers
        .into_iter()
        .map(|peer| tokio::spawn(echo_session(peer, o.clone(), deadline, per_session)))
        .collect();
    let mut kept = Vec::with_capacity(tasks.len());
    let mut stats = Stats::default();
    for task in tasks {
        match task.await {
            Ok((peer, s)) => {
                stats.merge(s);
                kept.extend(peer);
            }
            Err(e) => stats.error(format!("task: {e}")),
        }
    }
    (kept, stats, started.elapsed())
}

/// Echo over one transport: `sessions` sessions, `inflight` messages each.
pub async fn echo(o: &Opts, control: &mut Control) -> Result<Report, String> {
    let (peers, mut setup) = open_many(o, o.transport, &o.prefix, "e", o.sessions).await;
    if peers.is_empty() {
        return Err(format!("no session opened: {:?}", setup.error_samples));
    }
    let open_failures = setup.errors;
    let opened = peers.len();
    let (peers, warm, _) = echo_phase(peers, o, o.warmup, o.max_messages).await;
    let warm_messages = warm.messages;
    setup.merge(warm);
    control.checkpoint("measure-start").await?;
    let (peers, stats, took) = echo_phase(peers, o, o.duration, o.max_messages).await;
    control.checkpoint("measure-end").await?;
    let name = match o.transport {
        Kind::SockjsWs => "sockjs-ws-echo",
        Kind::RawWs => "raw-ws-echo",
        Kind::XhrStreaming => "xhr-streaming-echo",
        Kind::XhrPolling => "xhr-polling-echo",
    };
    let survivors = peers.len();
    let mut after = Stats::default();
    let closes = stream::iter(peers)
        .map(|peer| peer.link.close(o.limit))
        .buffer_unordered(o.concurrency)
        .collect::<Vec<_>>();
    if timeout(o.limit, closes).await.is_err() {
        after.error("closing the sessions timed out");
    }
    setup.merge(after);
    Ok(Report {
        scenario: name.into(),
        sessions: opened,
        seconds: took.as_secs_f64(),
        stats,
        other_errors: setup,
        extra: vec![
            ("inflight", json!(o.inflight)),
            ("open_failures", json!(open_failures)),
            ("warmup_messages", json!(warm_messages)),
            ("sessions_left", json!(survivors)),
        ],
    })
}

/// A broadcast receiver: checks that rounds arrive complete and in order,
/// reports each to the sender's side, and stops at the end round.
async fn receive_rounds(
    mut ws: Ws,
    id: usize,
    o: Opts,
    epoch: Instant,
    done: mpsc::UnboundedSender<u64>,
    max_rounds: u64,
    hard_deadline: Instant,
) -> Stats {
    let mut stats = Stats::default();
    let mut expected = 1u64;
    let mut got = Vec::new();
    for _frame in 0..=max_rounds {
        if Instant::now() > hard_deadline {
            stats.error(format!("receiver {id}: past the deadline"));
            return stats;
        }
        got.clear();
        if let Err(e) = sockjs_next(&mut ws, &mut got, o.limit).await {
            stats.error(format!("receiver {id}: {e}"));
            return stats;
        }
        let now_us = epoch.elapsed().as_micros() as u64;
        for message in &got {
            let Some((round, phase, sent_us)) = parse_broadcast(message, o.size) else {
                stats.error(format!("receiver {id}: malformed {message:?}"));
                return stats;
            };
            if round != expected {
                stats.error(format!("receiver {id}: round {round} where {expected} was due"));
                return stats;
            }
            expected += 1;
            if phase == 'm' {
                stats.record_us(now_us.saturating_sub(sent_us));
            }
            if phase == 'e' {
                return stats;
            }
            let _ = done.send(round);
        }
    }
    stats.error(format!("receiver {id}: frame limit reached"));
    stats
}

/// The sender's side of a broadcast phase: rounds with at most `window`
/// undelivered, until `run_for` or `cap` rounds. Returns rounds sent.
#[allow(clippy::too_many_arguments)]
async fn send_rounds(
    sender: &mut Link,
    o: &Opts,
    phase: char,
    next_round: &mut u64,
    receivers: u32,
    done: &mut mpsc::UnboundedReceiver<u64>,
    epoch: Instant,
    run_for: Duration,
    cap: u64,
) -> Result<u64, String> {
    let deadline = Instant::now() + run_for;
    let mut missing: HashMap<u64, u32> = HashMap::new();
    let mut sent = 0u64;
    // Each step takes one delivery; a round has `receivers` of them.
    let max_steps = (cap + 1) * (u64::from(receivers) + 1);
    for _step in 0..max_steps {
        while missing.len() < o.window && sent < cap && Instant::now() < deadline {
            let sent_us = epoch.elapsed().as_micros() as u64;
            let round = *next_round;
            *next_round += 1;
            sent += 1;
            missing.insert(round, receivers);
            sender
                .send(&[broadcast_payload(round, phase, sent_us, o.size)], o.limit)
                .await?;
        }
        if missing.is_empty() {
            return Ok(sent);
        }
        let round = timeout(o.limit, done.recv())
            .await
            .map_err(|_| format!("a round did not reach all {receivers} receivers in time"))?
            .ok_or("every receiver stopped")?;
        if let Some(left) = missing.get_mut(&round) {
            *left -= 1;
            if *left == 0 {
                missing.remove(&round);
            }
        }
    }
    Err("step limit reached".into())
}

/// Broadcast fan-out: one sender, `sessions` receivers that joined first.
pub async fn broadcast(o: &Opts, control: &mut Control) -> Result<Report, String> {
    let (mut peers, mut setup) = open_many(o, Kind::SockjsWs, &o.prefix, "b", o.sessions + 1).await;
    if setup.errors > 0 {
        return Err(format!("receivers failed to open: {:?}", setup.error_samples));
    }
    let mut sender = peers.pop().ok_or("no sender")?.link;
    // Join: the app adds a session to the audience and answers 'joined'.
    let joins = stream::iter(peers.iter_mut())
        .map(|peer| async move {
            peer.link.send(&["join".to_string()], o.limit).await?;
            let mut got = Vec::new();
            peer.link.recv(&mut got, o.limit).await?;
            if got != ["joined"] {
                return Err(format!("join answered {got:?}"));
            }
            Ok(())
        })
        .buffer_unordered(o.concurrency)
        .collect::<Vec<Result<(), String>>>()
        .await;
    if let Some(Err(e)) = joins.into_iter().find(|r| r.is_err()) {
        return Err(format!("join failed: {e}"));
    }
    let receivers = peers.len() as u32;
    let epoch = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let max_rounds = 2 * o.max_messages + 2;
    let hard_deadline = Instant::now() + o.warmup + o.duration + 4 * o.limit;
    let tasks: Vec<_> = peers
        .into_iter()
        .map(|peer| {
            let Link::Sockjs(ws) = peer.link else {
                unreachable!("broadcast peers are SockJS WebSockets")
            };
            tokio::spawn(receive_rounds(
                *ws,
                peer.id,
                o.clone(),
                epoch,
                tx.clone(),
                max_rounds,
                hard_deadline,
            ))
        })
        .collect();
    drop(tx);
    let mut next_round = 1u64;
    let warm = send_rounds(
        &mut sender,
        o,
        'w',
        &mut next_round,
        receivers,
        &mut rx,
        epoch,
        o.warmup,
        o.max_messages,
    );
    let warm_rounds = warm.await?;
    control.checkpoint("measure-start").await?;
    let started = Instant::now();
    let rounds = send_rounds(
        &mut sender,
        o,
        'm',
        &mut next_round,
        receivers,
        &mut rx,
        epoch,
        o.duration,
        o.max_messages,
    )
    .await?;
    let took = started.elapsed();
    control.checkpoint("measure-end").await?;
    // The end round stops the receivers.
    let end = broadcast_payload(next_round, 'e', 0, o.size);
    sender.send(&[end], o.limit).await?;
    let mut stats = Stats::default();
    for task in tasks {
        match timeout(o.limit, task).await {
            Ok(Ok(s)) => stats.merge(s),
            Ok(Err(e)) => stats.error(format!("receiver task: {e}")),
            Err(_) => stats.error("a receiver did not finish"),
        }
    }
    setup.messages = 0;
    Ok(Report {
        scenario: "broadcast".into(),
        sessions: receivers as usize,
        seconds: took.as_secs_f64(),
        stats,
        other_errors: setup,
        extra: vec![
            ("rounds", json!(rounds)),
            ("warmup_rounds", json!(warm_rounds)),
            ("window", json!(o.window)),
        ],
    })
}

/// Idle sessions: opens `sessions` SockJS WebSocket sessions (the measured
/// phase; before it, optionally, `--warm-churn-ms` of churn), leaves them idle for `settle`, checkpoint `rss`, optionally idle
/// for `settled` more (past the servers' heartbeats and their garbage
/// collectors' idle-time shrinking), checkpoint `rss-settled`, then checks
/// that every one still echoes.
pub async fn idle(o: &Opts, control: &mut Control) -> Result<Report, String> {
    // With `--warm-churn-ms`, sessions churned first: the server's JIT
    // compiles its opening path and its heap grows to the rate of openings
    // now, not while the idle sessions are counted.
    let mut other = Stats::default();
    let mut warm_cycles = 0;
    if !o.warm_churn.is_zero() {
        let (churned, _) = churn_phase(o, "iw", o.warm_churn, o.max_messages).await;
        warm_cycles = churned.messages;
        other.merge(churned);
    }
    // Warm-up: a few sessions opened, used and closed.
    let (warm, opened) = open_many(o, Kind::SockjsWs, &o.prefix, "w", 20.min(o.sessions)).await;
    other.merge(opened);
    let (warm, warm_stats, _) = echo_phase(warm, o, Duration::from_millis(200), 200).await;
    other.merge(warm_stats);
    for peer in warm {
        if let Err(e) = peer.link.close(o.limit).await {
            other.error(format!("warm-up close: {e}"));
        }
    }
    crate::link::use_own_ports();
    control.checkpoint("measure-start").await?;
    let started = Instant::now();
    let (peers, stats) = open_many(o, Kind::SockjsWs, &o.prefix, "i", o.sessions).await;
    let took = started.elapsed();
    control.checkpoint("measure-end").await?;
    tokio::time::sleep(o.settle).await;
    control.checkpoint("rss").await?;
    if !o.settled.is_zero() {
        tokio::time::sleep(o.settled).await;
        control.checkpoint("rss-settled").await?;
    }
    let open = peers.len();
    // Every session must still be alive: one echo each.
    let (alive, check, _) = echo_phase(peers, o, o.limit, open as u64).await;
    other.merge(check);
    other.messages = 0;
    Ok(Report {
        scenario: "idle".into(),
        sessions: open,
        seconds: took.as_secs_f64(),
        stats,
        other_errors: other,
        extra: vec![
            ("alive_after", json!(alive.len())),
            ("warm_churn_cycles", json!(warm_cycles)),
        ],
    })
}

/// One churn worker: open a session, one echo, close; again, until the
/// deadline or `cap` cycles.
async fn churn_worker(worker: usize, o: Opts, tag: String, deadline: Instant, cap: u64) -> Stats {
    let mut stats = Stats::default();
    for cycle in 0..cap {
        if Instant::now() >= deadline {
            break;
        }
        let started = Instant::now();
        let id = session_id(&tag, worker * 1_000_000 + cycle as usize);
        let outcome = async {
            let mut link = Link::open(Kind::SockjsWs, o.port, &o.prefix, &id, o.limit).await?;
            let p = payload(worker, cycle, o.size);
            link.send(std::slice::from_ref(&p), o.limit).await?;
            let mut got = Vec::new();
            link.recv(&mut got, o.limit).await?;
            if got != [p] {
                return Err(format!("echo mismatch: {got:?}"));
            }
            link.close(o.limit).await
        }
        .await;
        match outcome {
            Ok(()) => stats.record(started.elapsed()),
            Err(e) => stats.error(format!("churn {id}: {e}")),
        }
    }
    stats
}

async fn churn_phase(o: &Opts, tag: &str, run_for: Duration, cap: u64) -> (Stats, Duration) {
    let started = Instant::now();
    let deadline = started + run_for;
    let per_worker = cap.div_ceil(o.concurrency as u64).max(1);
    let tasks: Vec<_> = (0..o.concurrency)
        .map(|w| tokio::spawn(churn_worker(w, o.clone(), tag.to_string(), deadline, per_worker)))
        .collect();
    let mut stats = Stats::default();
    for task in tasks {
        match task.await {
            Ok(s) => stats.merge(s),
            Err(e) => stats.error(format!("task: {e}")),
        }
    }
    (stats, started.elapsed())
}

/// Session churn: `concurrency` workers each open, echo once, close.
pub async fn churn(o: &Opts, control: &mut Control) -> Result<Report, String> {
    let (mut warm, _) = churn_phase(o, "cw", o.warmup, o.max_messages).await;
    control.checkpoint("measure-start").await?;
    let (stats, took) = churn_phase(o, "cm", o.duration, o.max_messages).await;
    control.checkpoint("measure-end").await?;
    let warm_cycles = warm.messages;
    warm.messages = 0;
    Ok(Report {
        scenario: "churn".into(),
        sessions: o.concurrency,
        seconds: took.as_secs_f64(),
        stats,
        other_errors: warm,
        extra: vec![("warmup_cycles", json!(warm_cycles))],
    })
}
