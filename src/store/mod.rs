//! The canonical SQLite store: partners' raw records with provenance, merged entities, the change log
//! and sync runs. One writer connection behind a mutex (SQLite has one writer anyway, and queuing in
//! process avoids `database is locked`); readers open their own connections and never block it (WAL).
//! One process at a time may write: it holds an exclusive lock on `<store>.lock` for its lifetime.

pub mod block_keys;
pub mod console;
pub mod entities;
pub mod guard;
pub mod id_history;
mod migrations;
pub mod oruk_queries;
pub mod places;
pub mod records;
pub mod review;
pub mod rpde_series;
pub mod runs;
pub mod search_index;
pub mod webhooks;
pub mod withdrawal;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open store {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the store's folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store {path} has schema version {found}, newer than this build understands ({supported}); upgrade tributary")]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("store error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored record {what} is unreadable: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("store {path} is already in use by another tributary process ({holder}); stop it, or use `tributary resync` to ask the running daemon")]
    Locked { path: PathBuf, holder: String },
    #[error("cannot lock the store through {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store {path} fails its integrity check ({detail}); stop here and restore it from a backup (or move it aside to start an empty store)")]
    Damaged { path: PathBuf, detail: String },
    #[error("store {path} is an empty file (0 bytes), not a store; restore it from a backup, or delete it to start an empty store")]
    EmptyFile { path: PathBuf },
    #[error("no store at {path} yet (a sync or `tributary run` creates it)")]
    Missing { path: PathBuf },
    #[error("store {path} has schema version {found}, older than this build reads ({supported}); run `tributary sync` or the daemon once to upgrade it")]
    TooOld {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
}

impl StoreError {
    /// Whether the error says the file's bytes are damaged (not a lock, a full disk or a query bug).
    pub fn is_corruption(&self) -> bool {
        match self {
            StoreError::Corrupt { .. } | StoreError::Damaged { .. } => true,
            StoreError::Sql(e) | StoreError::Open { source: e, .. } => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            ),
            _ => false,
        }
    }
}

/// The first sign of a damaged store this process met while serving (reads that fail with
/// SQLite's corruption codes); `/healthz` and the watchdog report it from then on.
static DAMAGE_SEEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Notes `e` if it shows the store's file is damaged; other errors are ignored.
pub fn note_if_damaged(e: &StoreError) {
    if e.is_corruption() {
        let first = DAMAGE_SEEN.set(e.to_string()).is_ok();
        if first {
            tracing::error!(error = %e, "the store is damaged; /healthz now answers 503");
        }
    }
}

/// What damage to the store this process has met, if any.
pub fn damage_seen() -> Option<&'static str> {
    DAMAGE_SEEN.get().map(String::as_str)
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Handle to the store file. Cheap to share behind an `Arc`.
pub struct Store {
    path: PathBuf,
    /// Read-write for the lock holder; a read-only connection in a read-only store, so a write
    /// through it fails instead of changing anything.
    writer: Mutex<Connection>,
    readers: ReaderPool,
    /// Counts the writer's releases: each is the end of at most one transaction, so an
    /// unchanged count means this process has written nothing since (see [`Store::generation`]).
    generation: AtomicU64,
    /// Held for the store's lifetime by the one writing process; the OS drops it if we die.
    _lock: Option<std::fs::File>,
}

/// The writer connection, borrowed for one transaction. Giving it back counts a generation.
pub struct Writer<'a> {
    conn: MutexGuard<'a, Connection>,
    generation: &'a AtomicU64,
}

impl std::ops::Deref for Writer<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for Writer<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        // Counted while the lock is still held, after any transaction on it has ended: a
        // reader that sees the old count read before the write was given back, which is a
        // state the store was in.
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// Read-only connections: idle ones reused so a request does not pay for opening one, and at
/// most `max` out at once. Each holds its own page cache, so thirty-two concurrent requests
/// would otherwise hold thirty-two caches; past a few per core they add no throughput either.
struct ReaderPool {
    state: Mutex<PoolState>,
    freed: Condvar,
    max: usize,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Connection>,
    out: usize,
}

/// Read connections allowed out at once: two per core, and at least [`MIN_READERS`].
pub fn reader_limit() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cores).max(MIN_READERS)
}

impl ReaderPool {
    fn new() -> ReaderPool {
        ReaderPool {
            state: Mutex::default(),
            freed: Condvar::new(),
            max: reader_limit(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a free place, then hands out an idle connection if there is one.
    fn take(&self) -> Option<Connection> {
        let mut state = self.lock();
        while state.out >= self.max {
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.out += 1;
        state.idle.pop()
    }

    /// Gives a place back, and the connection with it when it is still usable.
    fn give_back(&self, conn: Option<Connection>) {
        let mut state = self.lock();
        state.out = state.out.saturating_sub(1);
        if let Some(conn) = conn {
            state.idle.push(conn);
        }
        drop(state);
        self.freed.notify_one();
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Read-only connections cannot checkpoint. Closing them first makes the writer the last
        // connection, whose close copies the write-ahead log into the database and removes it;
        // otherwise a big sync leaves its whole log for the next process to read and checkpoint.
        self.readers.lock().idle.clear();
        if self._lock.is_none() {
            return; // read-only: nothing of ours to checkpoint
        }
        let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::debug!(error = %e, "checkpoint at close failed; the log is kept and replayed");
        }
    }
}

/// Fewest read connections allowed out at once, whatever the core count (requests and a sync's
/// feed-state read share them).
const MIN_READERS: usize = 4;

/// A pooled read-only connection; it goes back to the pool when dropped.
pub struct Reader<'a> {
    conn: Option<Connection>,
    pool: &'a ReaderPool,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Always Some until drop.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("reader used after drop"))
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        self.pool.give_back(self.conn.take());
    }
}

/// The writer's page cache, in KiB (SQLite takes a negative number as KiB): 8 MiB instead of
/// SQLite's 2, so a sync's upserts keep the records' index pages in memory.
pub const CACHE_KIB: i64 = -8_192;

/// Each reader's page cache, in KiB. Readers answer point lookups, index range scans and whole
/// calendars read once per change (then served from the response cache), none of which a bigger
/// cache keeps in memory; SQLite's default is kept, times the readers allowed out at once.
const READER_CACHE_KIB: i64 = -2_048;

fn configure(conn: &Connection, cache_kib: i64) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // (No mmap: the mapped pages would count in the daemon's RSS.)
    conn.pragma_update(None, "cache_size", cache_kib)?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store for writing: takes the store's exclusive writer lock,
    /// checks the file's integrity, brings its schema up to date and closes runs a dead process
    /// left `running`. Fails if another process holds the lock.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
        }
        let lock = lock_exclusive(path)?;
        refuse_empty_file(path)?;
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        configure(&conn, CACHE_KIB).map_err(open_err)?;
        check_integrity(&conn, path)?;
        // WAL lets readers run during a sync's write transaction; NORMAL sync is durable at each
        // checkpoint and never corrupts on power loss in WAL mode.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        // After a checkpoint resets it, a write-ahead log grown by a big sync shrinks back.
        conn.pragma_update(None, "journal_size_limit", 64i64 << 20)
            .map_err(open_err)?;
        let found = schema_version(&conn, path)?;
        if found > migrations::latest() {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found,
                supported: migrations::latest(),
            });
        }
        migrations::apply(&mut conn).map_err(open_err)?;
        // We hold the writer lock, so no other process is syncing: a run left 'running' belongs
        // to a process that died mid-sync, and its transaction rolled back.
        conn.execute(
            "UPDATE runs SET result = 'interrupted', finished_at = COALESCE(finished_at, started_at),
                 error = COALESCE(error, 'the process stopped before this sync finished; nothing was applied')
             WHERE result = 'running'",
            [],
        )
        .map_err(open_err)?;
        Ok(Store {
            path: path.to_path_buf(),
            writer: Mutex::new(conn),
            readers: ReaderPool::new(),
            generation: AtomicU64::new(0),
            _lock: Some(lock),
        })
    }

    /// Opens an existing store for reading only (`status`, `export`): no lock, no migration, no
    /// write of any kind, so it is safe beside a running daemon. Its `writer()` is read-only too.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        refuse_empty_file(path)?;
        let conn = open_read_connection(path, READER_CACHE_KIB)?;
        let found = schema_version(&conn, path)?;
        let supported = migrations::latest();
        if found != supported {
            return Err(if found > supported {
                StoreError::TooNew {
                    path: path.to_path_buf(),
                    found,
                    supported,
                }
            } else {
                StoreError::TooOld {
                    path: path.to_path_buf(),
                    found,
                    supported,
                }
            });
        }
        Ok(Store {
            path: path.to_path_buf(),
            writer: Mutex::new(conn),
            readers: ReaderPool::new(),
            generation: AtomicU64::new(0),
            _lock: None,
        })
    }

    /// Reads through the store the way a request does, on a fresh connection so no page cache
    /// hides what is on disk now: the newest entity and source record (root to leaf of both
    /// tables) and their listing index. For `/healthz` and the watchdog; damage found is noted
    /// (see [`damage_seen`]).
    pub fn probe(&self) -> Result<()> {
        let result = (|| {
            let conn = open_read_connection(&self.path, READER_CACHE_KIB)?;
            for sql in [
                "SELECT length(body) FROM entities ORDER BY rowid DESC LIMIT 1",
                "SELECT length(payload) FROM source_records ORDER BY rowid DESC LIMIT 1",
                "SELECT COUNT(*) FROM (SELECT id FROM entities INDEXED BY entities_orgs
                   WHERE kind = 'organisations' AND deleted_at IS NULL LIMIT 100)",
            ] {
                conn.query_row(sql, [], |_| Ok(()))
                    .optional()
                    .map_err(StoreError::Sql)?;
            }
            Ok(())
        })();
        if let Err(e) = &result {
            note_if_damaged(e);
        }
        result
    }

    /// Whether some process holds the store's writer lock right now (a daemon or a `sync`).
    pub fn writer_active(path: &Path) -> bool {
        let Ok(file) = std::fs::File::open(lock_path(path)) else {
            return false;
        };
        // Taking a shared lock fails only while someone holds the exclusive one; drop releases it.
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared).is_err()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The single writer connection. Hold it only for one transaction.
    pub fn writer(&self) -> Writer<'_> {
        // A panic while holding the lock leaves no half-written transaction (rusqlite rolls back on
        // drop), so the connection is still sound to reuse.
        Writer {
            conn: self.writer.lock().unwrap_or_else(|e| e.into_inner()),
            generation: &self.generation,
        }
    }

    /// How many times this process has given the writer back. Equal counts mean nothing was
    /// written in between by this process, which holds the store's only writer (its lock keeps
    /// other tributary processes out): readers use it to skip asking the store what changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A read-only connection from the pool (opened on demand). Readers never wait for the
    /// writer; one waits for another reader only when the pool's limit is out at once.
    pub fn reader(&self) -> Result<Reader<'_>> {
        let conn = match self.readers.take() {
            Some(c) => c,
            None => match self.open_reader() {
                Ok(c) => c,
                Err(e) => {
                    self.readers.give_back(None);
                    return Err(e);
                }
            },
        };
        Ok(Reader {
            conn: Some(conn),
            pool: &self.readers,
        })
    }

    fn open_reader(&self) -> Result<Connection> {
        open_read_connection(&self.path, READER_CACHE_KIB)
    }

    /// Registers the configured partners (name, priority) so queries and survivorship can use them.
    pub fn upsert_partners<P: PartnerEntry>(&self, partners: &[P]) -> Result<()> {
        self.register_partners(partners, None)
    }

    /// [`Store::upsert_partners`], and notes the partners no longer configured: their records
    /// are withdrawn `grace_days` after (see [`withdrawal`]). `None`: the default grace.
    pub fn register_partners<P: PartnerEntry>(
        &self,
        partners: &[P],
        grace_days: Option<u32>,
    ) -> Result<()> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        for p in partners {
            upsert_partner(&tx, p.id(), p.name(), p.priority())?;
        }
        let ids: Vec<&str> = partners.iter().map(|p| p.id()).collect();
        let grace = grace_days.unwrap_or(withdrawal::DEFAULT_GRACE_DAYS);
        let now = chrono::Utc::now();
        withdrawal::note_configured(&tx, &ids, grace, now)?;
        // Due withdrawals are marked for the next resolution (at start, and at every sync).
        withdrawal::withdraw_due(&tx, now)?;
        tx.commit()?;
        Ok(())
    }
}

/// What the store keeps of a configured partner: its id, display name and survivorship priority.
/// The config's partner implements it, so the store needs nothing from the config.
pub trait PartnerEntry {
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    fn priority(&self) -> i64;
}

/// Creates or updates one partner's row: at registration and at the start of each of its syncs.
pub fn upsert_partner(conn: &Connection, id: &str, name: &str, priority: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO partners (id, name, priority) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, priority = excluded.priority",
    )?
    .execute(rusqlite::params![id, name, priority])?;
    Ok(())
}

fn open_read_connection(path: &Path, cache_kib: i64) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    configure(&conn, cache_kib)?;
    Ok(conn)
}

/// The lock file beside the store: `tributary.db` is guarded by `tributary.db.lock`.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Tries at taking the writer lock before a holder is taken to be another writer.
const LOCK_TRIES: usize = 10;

/// Takes the store's exclusive writer lock without waiting for a writer, and writes our pid into the lock
/// file so the next process can say who holds it. The OS releases it when the process ends,
/// however it ends, so a crash never leaves a stale lock.
fn lock_exclusive(store: &Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let path = lock_path(store);
    let lock_err = |source| StoreError::Lock {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(lock_err)?;
    // `writer_active` (as `tributary status` runs it) holds a shared lock for an instant: a few
    // tries a moment apart tell that from a real writer, which holds the lock for good.
    let mut tries = 0;
    let locked = loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Err(e) if e == rustix::io::Errno::WOULDBLOCK && tries < LOCK_TRIES => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => break other,
        }
    };
    match locked {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim().parse::<u32>() {
                Ok(pid) => format!("pid {pid}"),
                Err(_) => "pid unknown".into(),
            };
            return Err(StoreError::Locked {
                path: store.to_path_buf(),
                holder,
            });
        }
        Err(e) => return Err(lock_err(e.into())),
    }
    file.set_len(0).map_err(lock_err)?;
    file.rewind().map_err(lock_err)?;
    writeln!(file, "{}", std::process::id()).map_err(lock_err)?;
    Ok(file)
}

/// SQLite takes a 0-byte file for a new empty database; for a store that once held data that
/// is a loss to report, not to paper over. A write-ahead log beside it may still hold the data.
fn refuse_empty_file(path: &Path) -> Result<()> {
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if len(path) == Some(0) && len(Path::new(&wal)).unwrap_or(0) == 0 {
        return Err(StoreError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// `PRAGMA quick_check` (every page and index entry, without comparing indexes to their tables
/// row by row): a store with flipped bytes is refused before anything is served from it.
fn check_integrity(conn: &Connection, path: &Path) -> Result<()> {
    let damaged = |detail: String| StoreError::Damaged {
        path: path.to_path_buf(),
        detail,
    };
    let problems: Vec<String> = conn
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| damaged(e.to_string()))?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    Err(damaged(problems.join("; ")))
}

fn schema_version(conn: &Connection, path: &Path) -> Result<i64> {
    let found = conn.query_row("PRAGMA user_version", [], |r| r.get(0));
    found.map_err(|source| {
        let e = StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        if e.is_corruption() {
            StoreError::Damaged {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }
        } else {
            e
        }
    })
}

/// Hands memory freed by SQLite back to the system. SQLite allocates its page caches with the C
/// allocator, whose per-thread arenas keep what a big resolution's cache (128 MiB) freed: a
/// daemon would hold it for good after its first national sync.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of glibc's arenas to the kernel; it takes no
    // pointers and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Current time as stored: RFC 3339 UTC with seconds.
pub fn now_text() -> String {
    timestamp(chrono::Utc::now())
}

/// Rows per statement in [`insert_many`].
const ROWS_PER_INSERT: usize = 128;

/// Inserts `n` rows, [`ROWS_PER_INSERT`] to a statement (the last few one at a time): for tiny
/// rows a statement each costs more than the B-tree append. `head` is the statement up to
/// `VALUES`, `row` one row's values with a `?` for each of its `per_row` bound values, `tail`
/// what follows the values (an upsert clause, or nothing). `bind(statement, i, at)` binds row
/// `i`'s values from parameter `at` on, straight from the caller's data: a million rows are
/// never copied into parameter lists first.
pub(crate) fn insert_many(
    tx: &rusqlite::Transaction,
    head: &str,
    row: &str,
    tail: &str,
    n: usize,
    per_row: usize,
    mut bind: impl FnMut(&mut rusqlite::Statement<'_>, usize, usize) -> rusqlite::Result<()>,
) -> Result<()> {
    let mut many = tx.prepare_cached(&format!(
        "{head} {} {tail}",
        vec![row; ROWS_PER_INSERT].join(", ")
    ))?;
    let full = n - n % ROWS_PER_INSERT;
    for start in (0..full).step_by(ROWS_PER_INSERT) {
        for j in 0..ROWS_PER_INSERT {
            bind(&mut many, start + j, j * per_row + 1)?;
        }
        many.raw_execute()?;
    }
    let mut one = tx.prepare_cached(&format!("{head} {row} {tail}"))?;
    for i in full..n {
        bind(&mut one, i, 1)?;
        one.raw_execute()?;
    }
    Ok(())
}

/// [`insert_many`] for rows already held as arrays of values.
pub(crate) fn insert_rows<P: rusqlite::ToSql, const N: usize>(
    tx: &rusqlite::Transaction,
    head: &str,
    tail: &str,
    rows: &[[P; N]],
) -> Result<()> {
    let row = format!("({})", vec!["?"; N].join(", "));
    insert_many(tx, head, &row, tail, rows.len(), N, |st, i, at| {
        for (j, v) in rows[i].iter().enumerate() {
            st.raw_bind_parameter(at + j, v)?;
        }
        Ok(())
    })
}

pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_release_of_the_writer_counts_a_generation() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let before = store.generation();
        {
            let mut w = store.writer();
            let tx = w.transaction().unwrap();
            tx.execute("CREATE TABLE t (x)", []).unwrap();
            tx.commit().unwrap();
            assert_eq!(store.generation(), before, "not until it is given back");
        }
        assert_eq!(store.generation(), before + 1);
        let _reader = store.reader().unwrap();
        assert_eq!(store.generation(), before + 1, "reading counts nothing");
    }

    #[test]
    fn no_more_readers_than_the_limit_are_out_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let limit = reader_limit();
        let out = std::sync::atomic::AtomicUsize::new(0);
        let most = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 * limit {
                s.spawn(|| {
                    let r = store.reader().unwrap();
                    let now = out.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    r.query_row("SELECT COUNT(*) FROM entities", [], |_| Ok(()))
                        .unwrap();
                    std::thread::sleep(Duration::from_millis(20));
                    out.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
        let most = most.into_inner();
        assert!(most <= limit, "{most} readers out at once, limit {limit}");
        assert!(most >= 2, "readers still run side by side ({most})");
        let pooled = store.readers.lock().idle.len();
        assert!(pooled <= limit, "{pooled} connections kept");
    }
}
