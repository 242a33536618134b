# boxswap changes: the list of what changed in a data folder since a watch
# started, for a final sync that costs what changed (steps/changes.go).
# Python 3.4+ standard library only (ctypes, Linux inotify): nothing to
# install on a box that runs the app.
#
#   changes.py start STATE ROOT TOKEN MAXAGE ROLE
#     stops a watch left in STATE, watches every folder under ROOT, then
#     forks a watcher and prints "ready FOLDERS" once the watches are in
#     place (or "unavailable REASON"). The watcher exits after MAXAGE s.
#   A line "VERB TOKEN" written to the FIFO STATE/ctl (a shell command,
#   no python in the window: see WatchStopCommand) makes the watcher read
#   every event queued so far, answer "ok N" or "doubt REASON" on the FIFO
#   STATE/reply (and in STATE/status), and linger (see linger). Any doubt means a full
#   scan. VERB "marks" (the destination's watch, ROLE dst) writes
#   STATE/marks: what changed there, raw. VERB "stop" (the source's) adds
#   STATE/extra (the destination's marks, copied there) and writes
#   STATE/list for rsync --files-from --from0: every path that may differ
#   from the copy made after the watch started, resolved on the source (a
#   superset: a path listed that did not change is harmless).
import ctypes
import errno
import os
import select
import signal
import stat
import struct
import sys
import time

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_UNMOUNT = 0x400, 0x800, 0x2000
IN_Q_OVERFLOW, IN_IGNORED, IN_ISDIR = 0x4000, 0x8000, 0x40000000
IN_ONLYDIR, IN_DONT_FOLLOW = 0x1000000, 0x2000000
MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
        IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)
ENTRY = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
HEAD = struct.Struct("iIII")
# Past this many changed paths a full scan costs no more than the list.
MAX_PATHS = 200000


def fail(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()
    sys.exit(0)


def put(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def get(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as f:
        return f.read()


def watcher_pid(state, name="pid"):
    """The pid of a live watcher of state (its file name: "pid" while it
    watches, "linger" once it answered), or 0."""
    try:
        pid = int(get(os.path.join(state, name)) or b"0")
    except ValueError:
        return 0
    if pid <= 0:
        return 0
    try:
        cmd = get("/proc/%d/cmdline" % pid).split(b"\0")
    except OSError:
        return 0
    if os.fsencode(state) not in cmd or b"start" not in cmd:
        return 0
    return pid


class Watch:
    def __init__(self, root):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.root = os.fsencode(root)
        self.wds = {}
        self.marks = {}
        self.doubt = ""
        self.hardlinks = 0
        # On the destination every path named in an event is sent again
        # whole from the source: what it was there is not known here.
        self.all_deep = False

    def add(self, rel):
        path = os.path.join(self.root, rel) if rel else self.root
        wd = self.libc.inotify_add_watch(self.fd, path, MASK)
        if wd < 0:
            e = ctypes.get_errno()
            if e in (errno.ENOENT, errno.ENOTDIR):
                return False  # gone meanwhile: its parent's event says so
            if e == errno.ENOSPC:
                raise OSError(e, "more folders than fs.inotify.max_user_watches allows")
            raise OSError(e, "inotify_add_watch %r" % path)
        self.wds[wd] = rel
        return True

    def walk(self):
        """Watches every folder, each before listing it: what is created
        after its listing is an event, what was there before is listed."""
        todo = [b""]
        while todo:
            rel = todo.pop()
            if not self.add(rel):
                continue
            try:
                it = os.scandir(os.path.join(self.root, rel) if rel else self.root)
            except FileNotFoundError:
                continue
            with it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        todo.append(os.path.join(rel, e.name) if rel else e.name)
                    elif e.is_file(follow_symlinks=False) and e.stat(follow_symlinks=False).st_nlink > 1:
                        self.hardlinks += 1

    def mark(self, rel, deep=False):
        rel = rel or b"."
        if deep or rel not in self.marks:
            self.marks[rel] = deep or self.marks.get(rel, False)

    def read(self):
        """Reads every event queued; False when none was."""
        try:
            buf = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            return False
        i = 0
        while i < len(buf):
            wd, mask, _, n = HEAD.unpack_from(buf, i)
            name = buf[i + HEAD.size:i + HEAD.size + n].rstrip(b"\0")
            i += HEAD.size + n
            self.event(wd, mask, name)
        return True

    def event(self, wd, mask, name):
        if mask & IN_Q_OVERFLOW:
            self.doubt = self.doubt or "the kernel dropped events (fs.inotify.max_queued_events)"
            return
        if wd not in self.wds:
            return
        d = self.wds[wd]
        if mask & IN_IGNORED:
            del self.wds[wd]
            if d == b"":
                self.doubt = self.doubt or "the watch on the folder itself ended"
            return
        if mask & IN_UNMOUNT:
            self.doubt = self.doubt or "a file system under the folder was unmounted"
        if d == b"" and mask & (IN_DELETE_SELF | IN_MOVE_SELF):
            self.doubt = self.doubt or "the folder itself was moved or deleted"
        if not name:
            self.mark(d)
            return
        p = os.path.join(d, name) if d else name
        # A folder that appears (created, or moved in with all it holds)
        # is sent whole: nothing under it was watched.
        self.mark(p, self.all_deep or bool(mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO)))
        if mask & ENTRY:
            self.mark(d)  # its entries and modification time changed

    def reach(self, rel):
        """What rsync is given for rel: rel itself (b"" when it exists),
        or, rel being gone, its deepest folder still there as b"/" (synced
        one level deep: what is gone is deleted, counted against
        --max-delete as a full sync counts it), or its first ancestor that
        is no longer a folder (a file, a link: a change too, it holds the
        answer). No --delete-missing-args: rsync 3.2.7 to 3.4.3 with the
        2025 security fixes refuse it ("invalid file mode 00")."""
        parts = rel.split(b"/")
        for i in range(1, len(parts) + 1):
            p = b"/".join(parts[:i])
            try:
                st = os.lstat(os.path.join(self.root, p))
            except FileNotFoundError:
                return b"/".join(parts[:i - 1]) or b".", b"/"
            except NotADirectoryError:
                return b"/".join(parts[:i - 1]), b""
            if i < len(parts) and not stat.S_ISDIR(st.st_mode):
                return p, b""
        return rel, b""

    def paths(self):
        """The list for rsync --files-from (no -r): a folder as "F/" is
        synced one level deep (its files sent, what is no longer there
        deleted); a folder that appeared is listed so at every level; a
        path that is gone is deleted by its folder's (see reach)."""
        out = []
        for rel, deep in self.marks.items():
            rel, gone = self.reach(rel)
            if gone:
                out.append(rel + gone)
                continue
            try:
                isdir = stat.S_ISDIR(os.lstat(os.path.join(self.root, rel)).st_mode)
            except OSError:
                isdir = False
            if not isdir:
                out.append(rel)
                continue
            out.append(rel + b"/")
            if not deep:
                continue
            for top, dirs, _ in os.walk(os.path.join(self.root, rel)):
                base = os.path.relpath(top, self.root)
                out.extend(os.path.join(base, n) + b"/" for n in dirs
                           if not os.path.islink(os.path.join(top, n)))
            if len(out) > MAX_PATHS:
                break
        return out


def start(state, root, token, maxage, role):
    if os.path.islink(state):
        fail("unavailable %s is a symbolic link" % state)
    os.makedirs(state, mode=0o700, exist_ok=True)
    old = watcher_pid(state)
    if old:
        os.kill(old, signal.SIGKILL)
    end_lingering(os.path.dirname(state))
    for n in ("pid", "ctl", "reply", "list", "status", "marks", "extra", "linger"):
        try:
            os.unlink(os.path.join(state, n))
        except FileNotFoundError:
            pass
    try:
        w = Watch(root)
        w.all_deep = role == "dst"
        w.walk()
    except (OSError, AttributeError) as e:
        fail("unavailable %s" % e)
    r, wr = os.pipe()
    if os.fork():
        os.close(wr)
        with os.fdopen(r, "rb") as f:
            fail(f.read().decode() or "unavailable the watcher did not start")
    os.close(r)
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        watch(w, state, token, int(maxage), wr)
    finally:
        os._exit(0)


def watch(w, state, token, maxage, wr):
    if w.hardlinks:
        w.doubt = "%d files under the folder have hard links: a change through one name is not seen on the others" % w.hardlinks
    ctl, reply = os.path.join(state, "ctl"), os.path.join(state, "reply")
    for f in (ctl, reply):
        os.mkfifo(f, 0o600)
    c = os.open(ctl, os.O_RDONLY | os.O_NONBLOCK)
    keep = os.open(ctl, os.O_WRONLY)  # no end of file while nobody writes
    put(os.path.join(state, "pid"), b"%d" % os.getpid())
    os.write(wr, b"ready %d" % len(w.wds))
    os.close(wr)
    end = time.monotonic() + maxage
    req = b""
    while b"\n" not in req:
        left = end - time.monotonic()
        if left <= 0:
            return finish(state, "doubt the watch expired after %d s" % maxage, False)
        ready = select.select([w.fd, c], [], [], left)[0]
        while w.read():
            pass
        if len(w.marks) > MAX_PATHS:
            return finish(state, "doubt more than %d paths changed: a full scan costs no more" % MAX_PATHS, False)
        if c in ready:
            req += os.read(c, 4096)
    os.close(keep)
    verb, _, got = req.split(b"\n")[0].partition(b" ")
    if got != token.encode() or verb not in (b"stop", b"marks"):
        return finish(state, "doubt the watch running is not the one the pre-sync started")
    # Every change made before the stop was queued when it was made.
    while w.read():
        pass
    if w.doubt:
        return finish(state, "doubt " + w.doubt)
    if verb == b"marks":
        # The destination's changes, for the source's watch to resolve.
        put(os.path.join(state, "marks"), b"".join((b"d" if d else b"p") + p + b"\0" for p, d in w.marks.items()))
        return finish(state, "ok %d" % len(w.marks))
    for rec in get(os.path.join(state, "extra")).split(b"\0"):
        if rec:
            w.mark(rec[1:], rec[:1] == b"d")
    paths = w.paths()
    if len(paths) > MAX_PATHS:
        return finish(state, "doubt more than %d paths changed: a full scan costs no more" % MAX_PATHS)
    # The top folder "." is listed only when its entries or attributes
    # changed (marked like any folder): listed, rsync sends all its entries
    # (25,000 student folders at 100,000 files: 0.2 s). The list's runs
    # write in place (--inplace, --no-implied-dirs): a changed file does not
    # touch its folder's time; a created or deleted entry marks its folder.
    put(os.path.join(state, "list"), b"".join(p + b"\0" for p in paths))
    finish(state, "ok %d" % len(paths))


def finish(state, status, answer=True):
    """Leaves status for whoever asks, and answers the stop waiting on reply."""
    put(os.path.join(state, "status"), status.encode() + b"\n")
    for n in ("ctl", "pid"):
        os.unlink(os.path.join(state, n))
    if not answer:
        return
    # Lingering from now on: a start never sees a watcher with neither
    # file (a stale one is told by its /proc cmdline).
    put(os.path.join(state, "linger"), b"%d" % os.getpid())
    signal.alarm(30)  # a stop that does not read its answer ends the watcher
    fd = os.open(os.path.join(state, "reply"), os.O_WRONLY)
    os.write(fd, status.encode() + b"\n")
    os.close(fd)
    linger(state)


# How long a watcher that answered keeps its watches (seconds).
LINGER = 60


def linger(state):
    """Keeps the watches of a watcher that answered for LINGER s more, its
    pid in STATE/linger: the kernel tears down a watch per folder when its
    descriptor closes (0.06 s for 85,000), and the stop is answered inside
    the production window, the final sync's rsync running next. The next
    start on this box ends every lingering watcher first (end_lingering):
    two moves' watches never add up against fs.inotify.max_user_watches."""
    signal.alarm(0)
    time.sleep(LINGER)
    try:
        os.unlink(os.path.join(state, "linger"))
    except FileNotFoundError:
        pass


def end_lingering(parent):
    """Ends the watchers under parent that answered and linger, and waits
    (1 s at most) until the kernel has released their watches: the new
    watch counts against the same fs.inotify.max_user_watches."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    killed = []
    for n in names:
        if not n.startswith("watch-"):
            continue
        state = os.path.join(parent, n)
        pid = watcher_pid(state, "linger")
        if pid and pid != os.getpid():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        try:
            os.unlink(os.path.join(state, "linger"))
        except FileNotFoundError:
            pass
    end = time.monotonic() + 1
    while killed and time.monotonic() < end:
        killed = [p for p in killed if running(p)]
        if killed:
            time.sleep(0.01)


def running(pid):
    """Whether pid is a process that has not exited (a zombie has: its
    descriptors, and so its watches, are released)."""
    st = get("/proc/%d/stat" % pid)
    return bool(st) and st[st.rfind(b")") + 2:][:1] != b"Z"


def main():
    verb, args = sys.argv[1], sys.argv[2:]
    if verb == "start":
        start(*args)
    else:
        sys.exit("usage: changes.py start STATE ROOT TOKEN MAXAGE ROLE (a watch is stopped through STATE/ctl)")


main()
