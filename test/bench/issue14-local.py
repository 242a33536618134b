#!/usr/bin/env python3
# Issue 14, measured locally (docs/performance.md, "What the students folder's
# gap was"). Needs python3, rsync and room for DIR.
#
#   issue14-local.py inotify-close DIR N   close of an inotify descriptor holding
#       N folder watches set as steps/changes.py sets them, and the exit of a
#       process holding them (3 runs each)
#   issue14-local.py top-folder DIR        100,000 files in 25,000 student folders
#       of 3 course folders each (the lab's students layout), a copy, then 1,000
#       files changed in 1,000 folders: the change list's rsync (the options of
#       steps/changes.go changedOpts) with the top folder "." listed and without
#       (3 runs each, alternating; the files changed again before each)
import ctypes
import os
import subprocess
import sys
import time


def inotify_child(root, n):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    for i in range(n):
        if libc.inotify_add_watch(fd, os.path.join(root, "d%d" % i).encode(), 0x2 | 0x4 | 0x100 | 0x200) < 0:
            sys.exit("inotify_add_watch %d: errno %d (fs.inotify.max_user_watches?)" % (i, ctypes.get_errno()))
    if os.environ.get("CLOSE_ONLY"):
        t = time.monotonic()
        os.close(fd)
        print("close of %d watches: %.3f s" % (n, time.monotonic() - t))
        return
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    os._exit(0)


def inotify_close(root, n):
    for i in range(n):
        os.makedirs(os.path.join(root, "d%d" % i), exist_ok=True)
    me = [sys.executable, os.path.abspath(__file__), "inotify-child", root, str(n)]
    for _ in range(3):
        subprocess.run(me, env=dict(os.environ, CLOSE_ONLY="1"), check=True)
    for _ in range(3):
        p = subprocess.Popen(me, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        p.stdout.readline()
        t = time.monotonic()
        p.stdin.write(b"\n")
        p.stdin.flush()
        p.wait()
        print("exit of a process holding %d watches: %.3f s" % (n, time.monotonic() - t))


def top_folder(root):
    src, dst = os.path.join(root, "src"), os.path.join(root, "dst")
    if not os.path.isdir(dst):
        files = []
        for s in range(25000):
            for c in range(3):
                d = os.path.join(src, "s%05d" % s, "c%d" % c)
                os.makedirs(d)
                files.append(d)
        for i in range(100000):
            with open(os.path.join(files[i % len(files)], "f%d" % i), "wb") as f:
                f.write(b"x" * 2000)
        subprocess.run(["rsync", "-a", "--", src + "/", dst + "/"], check=True)
    # One file in each of 1,000 course folders spread over the students.
    changed = ["s%05d/c%d/f%d" % ((i * 25) % 25000, i % 3, (i * 25) % 25000 * 3 + i % 3) for i in range(1000)]
    lst = os.path.join(root, "list")
    opts = ["--from0", "--no-implied-dirs", "--inplace", "--files-from", lst]
    for run in range(6):
        dot = run % 2 == 0
        for p in changed:
            with open(os.path.join(src, p), "ab") as f:
                f.write(b"y")
        with open(lst, "wb") as f:
            f.write(b"".join(p.encode() + b"\0" for p in changed + (["."] if dot else [])))
        t = time.monotonic()
        subprocess.run(["rsync", "-a", "--delete", "--protect-args", "--max-delete=-1"] + opts + ["--", src + "/", dst + "/"], check=True)
        print("list rsync, 1,000 files changed, %s: %.3f s" % ("with ." if dot else "without .", time.monotonic() - t))


def main():
    verb, args = sys.argv[1], sys.argv[2:]
    if verb == "inotify-close":
        inotify_close(args[0], int(args[1]))
    elif verb == "inotify-child":
        inotify_child(args[0], int(args[1]))
    elif verb == "top-folder":
        top_folder(args[0])
    else:
        sys.exit("usage: issue14-local.py inotify-close DIR N | top-folder DIR")


main()
