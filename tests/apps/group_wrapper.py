"""A stand-in for the shell or supervisor that starts a server: a process-group leader
that runs a server command as its child, in its own process group, and outlives it.

Run as ``python group_wrapper.py LOGFILE COMMAND...``: prints ``child PID`` once the
server started and ``exited CODE`` when it ends (its output goes to LOGFILE), then
waits for its standard input to close and exits 0. A signal sent to the process group
(or to its leader, as Microdot 2.x's ``app.shutdown()`` does) ends it instead.

Imported, :class:`WrappedServer` drives it from a test.
"""
import os
import queue
import signal
import subprocess
import sys
import threading
import time

#: The folder of the test applications (cwd of the servers the shutdown tests start).
APPS = os.path.dirname(os.path.abspath(__file__))


def env_for(events):
    """The environment of a server under test: the repository importable, and
    shutdown_app's hooks recording to ``events``."""
    root = os.path.dirname(os.path.dirname(APPS))
    env = dict(os.environ, PYTHONUNBUFFERED='1', MICRODOT_TEST_EVENTS=str(events))
    env['PYTHONPATH'] = os.pathsep.join([root] + ([env['PYTHONPATH']]
                                                  if env.get('PYTHONPATH') else []))
    return env


class WrappedServer:
    """A server command run under this wrapper, started in a new session so that the
    wrapper leads the process group; ``close()`` ends it and kills what is left."""

    def __init__(self, command, cwd, env, log_path):
        self.log_path = str(log_path)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, self.log_path, *command], cwd=cwd, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            start_new_session=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.child_pid = int(self.expect('child ', 20))

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def expect(self, prefix, timeout):
        """The rest of the wrapper's next line, which must start with ``prefix``."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError('no %r line from the wrapper within %ss; server log:\n%s'
                                 % (prefix, timeout, self.log())) from None
        assert line is not None and line.startswith(prefix), (line, self.log())
        return line[len(prefix):]

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ''

    def group_alive(self):
        """Whether any process is left in the wrapper's process group."""
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def others_in_group(self):
        """The live processes of the wrapper's process group other than the wrapper
        (read from /proc; zombies waiting to be reaped do not count)."""
        found = set()
        for name in os.listdir('/proc'):
            if not name.isdigit() or int(name) == self.proc.pid:
                continue
            try:
                with open('/proc/%s/stat' % name) as f:
                    fields = f.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if fields[0] != 'Z' and int(fields[2]) == self.proc.pid:
                found.add(int(name))
        return found

    def wait_group_empty(self, timeout):
        """Wait until only the wrapper is left in its process group; the processes
        still there after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.others_in_group()
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.05)

    def close(self, timeout=10):
        """Let the wrapper exit (if it is still alive) and reap it; returns its exit
        code. Anything left in its process group is killed."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout)
        finally:
            if self.group_alive():
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def main(log_path, command):
    with open(log_path, 'w') as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
    print('child %d' % child.pid, flush=True)
    code = child.wait()
    print('exited %d' % code, flush=True)
    sys.stdin.read()  # until the test closes it
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], sys.argv[2:]))
