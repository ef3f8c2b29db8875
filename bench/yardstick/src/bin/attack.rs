//! attack: overload attacks on an mTLS server, with a stream of good clients measured during them
//! (issue 16). Benchmark tool only; loopback targets only. Single-threaded (one tokio
//! current-thread runtime), so that it can be pinned to one CPU like loadgen.
//!
//! usage: attack --addr 127.0.0.1:18081 --ca ca.crt --cert client.crt --key client.key [--sni localhost]
//!          [--silent N] [--dribble M --dribble-interval-ms 1000]
//!          [--h2-conns C --h2-streams S --h2-path /stall]
//!          [--good N --good-interval-ms 250 --good-timeout-ms 5000 --good-path / --good-h2]
//!          [--settle-ms 1000] [--observe-s 20] [--reopen] [--connect-concurrency 256] [--connect-timeout-ms 10000]
//!        attack blackhole --listen 127.0.0.1:18089
//!
//! Order of events: (1) the attack is set up: N silent TCP connections (never send a byte), M
//! "dribbling" connections (a real TLS ClientHello, one byte per interval), C HTTP/2 mTLS
//! connections (ALPN h2, the allowed client identity) with S concurrent GET streams each to a path
//! the app never answers, never cancelled; (2) `--settle-ms` pause; (3) every `--good-interval-ms`
//! a good client makes a new mTLS connection (full handshake, ALPN http/1.1, or h2 with
//! `--good-h2`) and one GET `--good-path`, with `--good-timeout-ms` for the whole of it; (4) the
//! attack stays in place until `--observe-s` seconds after the end of setup, or until the last
//! good client is done if that is later. Then it prints a summary on stderr and one line
//! `RESULT key=value ...` on stdout (latencies in ms):
//!   good_ok good_total good_fail_timeout good_fail_error good_fail_status good_p50_ms good_p99_ms
//!   good_max_ms (over all good requests; a failed one counts with the time it took to fail)
//!   silent silent_connected silent_connect_failed silent_closed_5s_pct silent_closed_15s_pct
//!   silent_open_end (per connection, from the moment its TCP connect completed; the X s share is
//!   over the connections connected at least X s before the end)
//!   dribble dribble_connected dribble_closed dribble_closed_p50_s dribble_open_end
//!   h2_conns h2_conns_ok h2_streams_sent (handed to the h2 client, which keeps to the server's
//!   SETTINGS_MAX_CONCURRENT_STREAMS) h2_responses h2_statuses (e.g. 504x3,503x1 or -)
//!   h2_stream_errors emfile (connects that failed with EMFILE/ENFILE) setup_s wall_s
//!
//! With `--reopen`, each silent or dribbling connection that the server closes is replaced by a
//! new one (so the attack keeps N and M open), and every connection is recorded.
//!
//! `blackhole` is the app's never-answering upstream: it accepts every connection, reads and
//! discards whatever comes, and never writes. It runs until it is killed.
//!
//! The soft RLIMIT_NOFILE is raised to the hard limit first; a connect that fails with EMFILE is
//! counted (`emfile`) as a failed connection of its kind, and the run goes on.
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{
    client::conn::{http1, http2},
    header::{CONNECTION, HOST},
    Request,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{pki_types::ServerName, ClientConfig, ClientConnection};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    time::{sleep, timeout, Instant, MissedTickBehavior},
};
use tokio_rustls::{client::TlsStream, TlsConnector};

#[path = "../client_tls.rs"]
mod client_tls;
use client_tls::{client_config, pct, Res};

struct Opts {
    addr: SocketAddr,
    sni: String,
    silent: usize,
    dribble: usize,
    dribble_interval: Duration,
    h2_conns: usize,
    h2_streams: usize,
    h2_path: String,
    good: usize,
    good_interval: Duration,
    good_timeout: Duration,
    good_path: String,
    good_h2: bool,
    settle: Duration,
    observe: Duration,
    reopen: bool,
    connect_concurrency: usize,
    connect_timeout: Duration,
}

/// TLS client setups, all with the client SVID.
struct Tls {
    name: ServerName<'static>,
    h1: TlsConnector,
    h2: TlsConnector,
    /// for the ClientHello of the dribbling connections (ALPN h2, http/1.1 like a real client)
    hello: Arc<ClientConfig>,
}

/// One silent or dribbling connection.
#[derive(Default, Clone)]
struct ConnRec {
    connected: Option<Instant>,
    closed: Option<Instant>,
    failed: bool,
}

#[derive(Default)]
struct H2Stats {
    conns_ok: usize,
    streams_sent: usize,
    responses: usize,
    statuses: BTreeMap<u16, usize>,
    stream_errors: usize,
    conn_errors: Vec<String>,
}

enum Outcome {
    Ok,
    Status(u16),
    Error(String),
    Timeout,
}

#[derive(Default)]
struct Shared {
    silent: Vec<ConnRec>,
    dribble: Vec<ConnRec>,
    h2: H2Stats,
    emfile: usize,
    /// silent/dribbling connections whose first connect has succeeded or failed
    initial_done: usize,
}
type State = Arc<Mutex<Shared>>;

fn lock(s: &State) -> std::sync::MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_emfile(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// Raises the soft open-file limit to the hard limit; returns the new soft limit.
fn raise_nofile() -> u64 {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        let want = libc::rlimit { rlim_cur: r.rlim_max, rlim_max: r.rlim_max };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
            r = want;
        }
    }
    r.rlim_cur
}

/// TCP connect with a bounded number of connects in flight; records EMFILE.
async fn tcp_connect(o: &Opts, gate: &Semaphore, st: &State) -> Res<TcpStream> {
    let _permit = gate.acquire().await?;
    match timeout(o.connect_timeout, TcpStream::connect(o.addr)).await {
        Err(_) => Err("connect timeout".into()),
        Ok(Err(e)) => {
            if is_emfile(&e) {
                lock(st).emfile += 1;
            }
            Err(e.into())
        }
        Ok(Ok(s)) => {
            s.set_nodelay(true)?;
            Ok(s)
        }
    }
}

/// Waits until the server closes the connection (EOF or error); anything it sends is discarded.
async fn until_closed<R: AsyncReadExt + Unpin>(rd: &mut R) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = rd.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// A real ClientHello, as the first flight a rustls client would send.
fn client_hello(tls: &Tls) -> Res<Vec<u8>> {
    let mut c = ClientConnection::new(tls.hello.clone(), tls.name.clone())?;
    let mut v = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut v)?;
    }
    Ok(v)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Silent,
    Dribble,
}

fn recs(g: &mut Shared, kind: Kind) -> &mut Vec<ConnRec> {
    match kind {
        Kind::Silent => &mut g.silent,
        Kind::Dribble => &mut g.dribble,
    }
}

/// One silent or dribbling connection, recorded from connect to close; with `--reopen`, a new one
/// each time the server closes it (or a connect fails, after 1 s), so the pressure stays on.
async fn attack_conn(o: Arc<Opts>, tls: Arc<Tls>, kind: Kind, gate: Arc<Semaphore>, st: State) {
    let mut first = true;
    loop {
        let i = {
            let mut g = lock(&st);
            let v = recs(&mut g, kind);
            v.push(ConnRec::default());
            v.len() - 1
        };
        let r = tcp_connect(&o, &gate, &st).await;
        {
            let mut g = lock(&st);
            g.initial_done += usize::from(first);
            let rec = &mut recs(&mut g, kind)[i];
            rec.connected = r.as_ref().ok().map(|_| Instant::now());
            rec.failed = r.is_err();
        }
        first = false;
        match r {
            Ok(mut s) if kind == Kind::Silent => until_closed(&mut s).await,
            // checked once in run(); an empty hello would make this a silent connection
            Ok(s) => dribble(s, &client_hello(&tls).unwrap_or_default(), o.dribble_interval).await,
            Err(_) => sleep(Duration::from_secs(1)).await,
        }
        if let Some(rec) = recs(&mut lock(&st), kind).get_mut(i).filter(|r| r.connected.is_some()) {
            rec.closed = Some(Instant::now());
        }
        if !o.reopen {
            return;
        }
    }
}

/// Sends `hello` one byte per `interval` until the server closes the connection.
async fn dribble(s: TcpStream, hello: &[u8], interval: Duration) {
    let (mut rd, mut wr) = s.into_split();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sent = 0;
    let closed = until_closed(&mut rd);
    tokio::pin!(closed);
    loop {
        tokio::select! {
            _ = &mut closed => break,
            _ = tick.tick(), if sent < hello.len() => {
                if wr.write_all(&hello[sent..sent + 1]).await.is_err() {
                    break;
                }
                sent += 1;
            }
        }
    }
}

async fn tls_connect(o: &Opts, tls: &Tls, h2: bool) -> Res<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(o.addr).await?;
    tcp.set_nodelay(true)?;
    let connector = if h2 { &tls.h2 } else { &tls.h1 };
    let s = connector.connect(tls.name.clone(), tcp).await?;
    if h2 && s.get_ref().1.alpn_protocol() != Some(b"h2") {
        return Err("server did not negotiate ALPN h2".into());
    }
    Ok(s)
}

fn get(o: &Opts, path: &str, h2: bool) -> Res<Request<Empty<Bytes>>> {
    Ok(if h2 {
        // HTTP/2: :scheme and :authority come from the absolute URI
        Request::get(format!("https://{}{path}", o.sni)).body(Empty::new())?
    } else {
        Request::get(path).header(HOST, o.sni.as_str()).header(CONNECTION, "close").body(Empty::new())?
    })
}

/// One HTTP/2 connection holding `h2_streams` requests that the app never answers.
async fn h2_conn(o: Arc<Opts>, tls: Arc<Tls>, st: State) -> Res<()> {
    let io = timeout(o.connect_timeout, tls_connect(&o, &tls, true)).await.map_err(|_| "h2 connect timeout")??;
    let (mut tx, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await?;
    tokio::spawn(conn);
    tx.ready().await?;
    lock(&st).h2.conns_ok += 1;
    for _ in 0..o.h2_streams {
        let resp = tx.send_request(get(&o, &o.h2_path, true)?);
        lock(&st).h2.streams_sent += 1;
        let st = st.clone();
        tokio::spawn(async move {
            let r = resp.await;
            let mut g = lock(&st);
            match r {
                Ok(r) => {
                    g.h2.responses += 1;
                    *g.h2.statuses.entry(r.status().as_u16()).or_default() += 1;
                }
                Err(_) => g.h2.stream_errors += 1,
            }
        });
    }
    // keep the connection (and so every stream) open until the process exits
    std::future::pending::<()>().await;
    Ok(())
}

/// One good request: new connection, full mTLS handshake, one GET, the whole body.
async fn good_once(o: &Opts, tls: &Tls) -> Res<u16> {
    let io = TokioIo::new(tls_connect(o, tls, o.good_h2).await?);
    let resp = if o.good_h2 {
        let (mut tx, conn) = http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        tx.send_request(get(o, &o.good_path, true)?).await?
    } else {
        let (mut tx, conn) = http1::handshake(io).await?;
        tokio::spawn(conn);
        tx.send_request(get(o, &o.good_path, false)?).await?
    };
    let status = resp.status().as_u16();
    resp.into_body().collect().await?;
    Ok(status)
}

async fn good_client(o: Arc<Opts>, tls: Arc<Tls>) -> (Outcome, Duration) {
    let t0 = Instant::now();
    let out = match timeout(o.good_timeout, good_once(&o, &tls)).await {
        Err(_) => Outcome::Timeout,
        Ok(Err(e)) => Outcome::Error(e.to_string()),
        Ok(Ok(s)) if (200..300).contains(&s) => Outcome::Ok,
        Ok(Ok(s)) => Outcome::Status(s),
    };
    (out, t0.elapsed())
}

fn parse_args(args: &mut impl Iterator<Item = String>) -> Res<(Opts, Tls)> {
    let mut o = Opts {
        addr: "127.0.0.1:18081".parse()?,
        sni: "localhost".into(),
        silent: 0,
        dribble: 0,
        dribble_interval: Duration::from_millis(1000),
        h2_conns: 0,
        h2_streams: 200,
        h2_path: "/stall".into(),
        good: 20,
        good_interval: Duration::from_millis(250),
        good_timeout: Duration::from_millis(5000),
        good_path: "/".into(),
        good_h2: false,
        settle: Duration::from_millis(1000),
        observe: Duration::from_secs(20),
        reopen: false,
        connect_concurrency: 256,
        connect_timeout: Duration::from_millis(10000),
    };
    let (mut ca, mut cert, mut key) = ("ca.crt".to_string(), "client.crt".to_string(), "client.key".to_string());
    let ms = |v: &str| -> Res<Duration> { Ok(Duration::from_millis(v.parse()?)) };
    while let Some(flag) = args.next() {
        if flag == "--good-h2" || flag == "--reopen" {
            o.good_h2 |= flag == "--good-h2";
            o.reopen |= flag == "--reopen";
            continue;
        }
        let v = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => o.addr = v.parse()?,
            "--sni" => o.sni = v,
            "--ca" => ca = v,
            "--cert" => cert = v,
            "--key" => key = v,
            "--silent" => o.silent = v.parse()?,
            "--dribble" => o.dribble = v.parse()?,
            "--dribble-interval-ms" => o.dribble_interval = ms(&v)?,
            "--h2-conns" => o.h2_conns = v.parse()?,
            "--h2-streams" => o.h2_streams = v.parse()?,
            "--h2-path" => o.h2_path = v,
            "--good" => o.good = v.parse()?,
            "--good-interval-ms" => o.good_interval = ms(&v)?,
            "--good-timeout-ms" => o.good_timeout = ms(&v)?,
            "--good-path" => o.good_path = v,
            "--settle-ms" => o.settle = ms(&v)?,
            "--observe-s" => o.observe = Duration::from_secs_f64(v.parse()?),
            "--connect-concurrency" => o.connect_concurrency = v.parse::<usize>()?.max(1),
            "--connect-timeout-ms" => o.connect_timeout = ms(&v)?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    if o.good_interval.is_zero() || o.dribble_interval.is_zero() {
        return Err("intervals must be > 0".into());
    }
    let cfg = |alpn: &[&[u8]]| client_config(&ca, false, &cert, &key, alpn).map(Arc::new);
    let tls = Tls {
        name: ServerName::try_from(o.sni.clone())?,
        h1: TlsConnector::from(cfg(&[b"http/1.1"])?),
        h2: TlsConnector::from(cfg(&[b"h2"])?),
        hello: cfg(&[b"h2", b"http/1.1"])?,
    };
    Ok((o, tls))
}

async fn blackhole(listen: &str) -> Res<()> {
    let l = TcpListener::bind(listen).await?;
    eprintln!("blackhole: listening on {listen}, never answering");
    loop {
        match l.accept().await {
            Ok((mut s, _)) => {
                tokio::spawn(async move { until_closed(&mut s).await });
            }
            Err(e) => {
                eprintln!("blackhole: accept: {e}");
                sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn main() -> Res<()> {
    let nofile = raise_nofile();
    let mut args = std::env::args().skip(1).peekable();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if args.peek().map(String::as_str) == Some("blackhole") {
        args.next();
        let listen = match (args.next().as_deref(), args.next()) {
            (Some("--listen"), Some(a)) => a,
            _ => return Err("usage: attack blackhole --listen ADDR".into()),
        };
        return rt.block_on(blackhole(&listen));
    }
    let (o, tls) = parse_args(&mut args)?;
    let (o, tls) = (Arc::new(o), Arc::new(tls));
    let need = (o.silent + o.dribble + o.h2_conns + o.good) as u64 + 64;
    if nofile < need {
        eprintln!("attack: open-file limit {nofile} < {need} needed; connects beyond it fail with EMFILE (counted)");
    }
    rt.block_on(run(o, tls))
}

async fn run(o: Arc<Opts>, tls: Arc<Tls>) -> Res<()> {
    let t0 = Instant::now();
    if o.dribble > 0 {
        client_hello(&tls)?;
    }
    let st: State = Arc::new(Mutex::new(Shared::default()));
    let gate = Arc::new(Semaphore::new(o.connect_concurrency));

    // (1) set the attack up
    for i in 0..o.silent.max(o.dribble) {
        if i < o.silent {
            tokio::spawn(attack_conn(o.clone(), tls.clone(), Kind::Silent, gate.clone(), st.clone()));
        }
        if i < o.dribble {
            tokio::spawn(attack_conn(o.clone(), tls.clone(), Kind::Dribble, gate.clone(), st.clone()));
        }
    }
    for _ in 0..o.h2_conns {
        let (o, tls, st) = (o.clone(), tls.clone(), st.clone());
        tokio::spawn(async move {
            if let Err(e) = h2_conn(o, tls, st.clone()).await {
                lock(&st).h2.conn_errors.push(e.to_string());
            }
        });
    }
    // setup is done when every silent/dribbling connect has succeeded or failed and every h2
    // connection has sent its streams (or failed)
    loop {
        let (pending, h2_pending) = {
            let g = lock(&st);
            let p = o.silent + o.dribble - g.initial_done;
            let h2_done = g.h2.conns_ok + g.h2.conn_errors.len() >= o.h2_conns
                && g.h2.streams_sent >= g.h2.conns_ok * o.h2_streams;
            (p, !h2_done)
        };
        if pending == 0 && !h2_pending {
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    let setup_end = Instant::now();
    let setup_s = (setup_end - t0).as_secs_f64();
    {
        let g = lock(&st);
        let ok = |v: &[ConnRec]| v.iter().filter(|r| r.connected.is_some()).count();
        eprintln!(
            "attack: setup {:.1}s: silent {}/{} connected, dribble {}/{} connected, h2 {}/{} conns with {} streams{}",
            setup_s,
            ok(&g.silent), o.silent, ok(&g.dribble), o.dribble, g.h2.conns_ok, o.h2_conns, g.h2.streams_sent,
            g.h2.conn_errors.first().map_or(String::new(), |e| format!(" (h2 error: {e})"))
        );
    }
    println!("READY");

    // (2) settle, (3) good clients
    sleep(o.settle).await;
    let mut tick = tokio::time::interval(o.good_interval);
    let mut goods = Vec::new();
    for _ in 0..o.good {
        tick.tick().await;
        goods.push(tokio::spawn(good_client(o.clone(), tls.clone())));
    }
    let mut lat_ms = Vec::new();
    let (mut ok, mut f_timeout, mut f_error, mut f_status) = (0, 0, 0, 0);
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for g in goods {
        let (out, d) = g.await?;
        lat_ms.push(d.as_secs_f64() * 1000.0);
        let why = match out {
            Outcome::Ok => {
                ok += 1;
                continue;
            }
            Outcome::Timeout => {
                f_timeout += 1;
                "timeout".to_string()
            }
            Outcome::Error(e) => {
                f_error += 1;
                format!("error: {e}")
            }
            Outcome::Status(s) => {
                f_status += 1;
                format!("status {s}")
            }
        };
        *failures.entry(why).or_default() += 1;
    }

    // (4) keep the attack in place for the observation window
    let end = setup_end + o.observe;
    if Instant::now() < end {
        sleep(end - Instant::now()).await;
    }
    let wall = t0.elapsed().as_secs_f64();

    // report
    lat_ms.sort_by(f64::total_cmp);
    let g = lock(&st);
    let connected = |v: &[ConnRec]| v.iter().filter(|r| r.connected.is_some()).count();
    let open_end = |v: &[ConnRec]| v.iter().filter(|r| r.connected.is_some() && r.closed.is_none()).count();
    let pct_of = |a: usize, b: usize| if b == 0 { "-".to_string() } else { format!("{:.1}", a as f64 * 100.0 / b as f64) };
    // of the connections that were open for at least `secs` s before now (all of them when
    // --observe-s >= secs, without --reopen): the share the server closed within `secs` s
    let now = Instant::now();
    let closed_pct = |v: &[ConnRec], secs: u64| {
        let d = Duration::from_secs(secs);
        let seen: Vec<_> = v.iter().filter_map(|r| Some((r.connected.filter(|a| *a + d <= now)?, r.closed))).collect();
        pct_of(seen.iter().filter(|(a, c)| c.is_some_and(|c| c - *a <= d)).count(), seen.len())
    };
    let (s5, s15) = (closed_pct(&g.silent, 5), closed_pct(&g.silent, 15));
    let (sc, dc) = (connected(&g.silent), connected(&g.dribble));
    let mut dribble_closed_s: Vec<f64> = g
        .dribble
        .iter()
        .filter_map(|r| Some((r.closed? - r.connected?).as_secs_f64()))
        .collect();
    dribble_closed_s.sort_by(f64::total_cmp);
    let dribble_p50 =
        if dribble_closed_s.is_empty() { "-".to_string() } else { format!("{:.1}", pct(&dribble_closed_s, 0.5)) };
    let statuses = if g.h2.statuses.is_empty() {
        "-".to_string()
    } else {
        g.h2.statuses.iter().map(|(s, n)| format!("{s}x{n}")).collect::<Vec<_>>().join(",")
    };
    let result = format!(
        "RESULT good_ok={ok} good_total={} good_fail_timeout={f_timeout} good_fail_error={f_error} \
         good_fail_status={f_status} good_p50_ms={:.1} good_p99_ms={:.1} good_max_ms={:.1} \
         silent={} silent_connected={sc} silent_connect_failed={} silent_closed_5s_pct={s5} \
         silent_closed_15s_pct={s15} silent_open_end={} \
         dribble={} dribble_connected={dc} dribble_closed={} dribble_closed_p50_s={dribble_p50} dribble_open_end={} \
         h2_conns={} h2_conns_ok={} h2_streams_sent={} h2_responses={} h2_statuses={statuses} \
         h2_stream_errors={} emfile={} setup_s={setup_s:.1} wall_s={wall:.1}",
        o.good,
        pct(&lat_ms, 0.5),
        pct(&lat_ms, 0.99),
        lat_ms.last().copied().unwrap_or(0.0),
        o.silent,
        g.silent.iter().filter(|r| r.failed).count(),
        open_end(&g.silent),
        o.dribble,
        dribble_closed_s.len(),
        open_end(&g.dribble),
        o.h2_conns,
        g.h2.conns_ok,
        g.h2.streams_sent,
        g.h2.responses,
        g.h2.stream_errors,
        g.emfile,
    );
    eprintln!("attack against {} ({wall:.1}s):", o.addr);
    eprintln!(
        "  good:    {ok}/{} ok; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms{}",
        o.good,
        pct(&lat_ms, 0.5),
        pct(&lat_ms, 0.99),
        lat_ms.last().copied().unwrap_or(0.0),
        failures.iter().map(|(k, n)| format!("; {n} x {k}")).collect::<String>()
    );
    if o.silent > 0 {
        eprintln!(
            "  silent:  {sc} connections to {} slots; closed by the server within 5 s: {s5}%, within 15 s: {s15}%; \
             still open at the end: {}",
            o.silent,
            open_end(&g.silent)
        );
    }
    if o.dribble > 0 {
        eprintln!(
            "  dribble: {dc} connections to {} slots; {} closed by the server (median after {dribble_p50} s); still open: {}",
            o.dribble,
            dribble_closed_s.len(),
            open_end(&g.dribble)
        );
    }
    if o.h2_conns > 0 {
        eprintln!(
            "  h2:      {}/{} conns, {} streams sent, {} responses ({statuses}), {} stream errors",
            g.h2.conns_ok, o.h2_conns, g.h2.streams_sent, g.h2.responses, g.h2.stream_errors
        );
    }
    if g.emfile > 0 {
        eprintln!("  EMFILE:  {} connects failed for lack of file descriptors in this process", g.emfile);
    }
    println!("{result}");
    Ok(())
}
