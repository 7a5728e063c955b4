//! A TCP proxy in front of a real broker that injects network faults: it forwards bytes both ways
//! until told to [`cut`](Proxy::cut) every open connection (both sides see the connection drop)
//! or to [`blackhole`](Proxy::blackhole) them (connections stay open but bytes vanish, so
//! requests time out). It is a fault injector, not a broker: everything it forwards comes from
//! the real one. Start the broker advertising the proxy's port, so that metadata sends clients
//! back through it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A running proxy; stops accepting when dropped and cuts what is open.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Where connections go; 0 until set.
    target: AtomicU16,
    blackhole: AtomicBool,
    stopped: AtomicBool,
    accepted: AtomicU64,
    next_id: AtomicU64,
    /// Both sockets of every open connection, to cut them.
    open: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
}

impl Proxy {
    /// Listens on a free loopback port; connections are refused (closed) until
    /// [`forward_to`](Self::forward_to) names the target.
    pub fn bind() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("bound").port();
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                accepting.accepted.fetch_add(1, Ordering::SeqCst);
                let target = accepting.target.load(Ordering::SeqCst);
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                    // Target down (or not set): the client sees its connection closed.
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                connect(&accepting, client, upstream);
            }
        });
        Proxy { port, shared }
    }

    /// Forwards connections to `127.0.0.1:port` from now on.
    pub fn forward_to(&self, port: u16) {
        self.shared.target.store(port, Ordering::SeqCst);
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Drops every open connection (both the client's and the broker's side); new connections
    /// are forwarded as before. Returns how many were cut.
    pub fn cut(&self) -> usize {
        let open: Vec<(TcpStream, TcpStream)> = self
            .shared
            .open
            .lock()
            .unwrap()
            .drain()
            .map(|(_, v)| v)
            .collect();
        for (a, b) in &open {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
        open.len()
    }

    /// While on, bytes in both directions are read and dropped: connections stay open, requests
    /// get no answers. Turning it off forwards again (what was dropped stays lost).
    pub fn blackhole(&self, on: bool) {
        self.shared.blackhole.store(on, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.lock().unwrap().len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        self.cut();
    }
}

/// Pumps bytes both ways between `client` and `upstream` on two threads.
fn connect(shared: &Arc<Shared>, client: TcpStream, upstream: TcpStream) {
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let (Ok(c3), Ok(u3)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    shared.open.lock().unwrap().insert(id, (c3, u3));
    let up = shared.clone();
    std::thread::spawn(move || pump(&up, id, client, upstream));
    let down = shared.clone();
    std::thread::spawn(move || pump(&down, id, u2, c2));
}

fn pump(shared: &Shared, id: u64, mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if shared.blackhole.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    // One side ended: end the other too, and forget the pair.
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    shared.open.lock().unwrap().remove(&id);
}
