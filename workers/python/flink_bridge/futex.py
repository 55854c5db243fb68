"""Futex wait and wake on a 32-bit word of the shared mapping (shared futexes: the peer is another process),
through libc's ``syscall`` with ctypes, and the full memory fence the ring's wake-up handshake needs.

Python has no atomics. The ring needs two orderings: positions published with release semantics and read
with acquire semantics, which x86-64's total store order gives plain stores and loads (CPython does not
reorder them either); and a full fence between publishing a position and reading the peer's waiting count
(and between counting oneself waiting and re-checking), which only a locked instruction gives. Acquiring and
releasing an uncontended lock executes locked compare-and-swaps (glibc's semaphores), hence ``fence``.
On other architectures this module refuses to load rather than lose wake-ups or read torn frames.
"""
import ctypes
import ctypes.util
import platform
import threading

if platform.machine() not in ("x86_64", "AMD64"):
    raise ImportError(f"the Python ring needs x86-64's memory ordering; this machine is {platform.machine()}")

_SYS_FUTEX = 202
_FUTEX_WAIT = 0
_FUTEX_WAKE = 1
_INT_MAX = 0x7FFFFFFF

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                     ctypes.c_void_p, ctypes.c_int]


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_fence_lock = threading.Lock()


def fence():
    """A full memory barrier (see the module's comment)."""
    _fence_lock.acquire()
    _fence_lock.release()


def wait(address, expected, seconds):
    """Sleeps while the word at ``address`` holds ``expected``, at most ``seconds``; spurious returns happen.
    EAGAIN (the word changed), EINTR and ETIMEDOUT all mean "go and look again" to the callers."""
    timeout = _Timespec(int(seconds), int((seconds % 1) * 1e9))
    _syscall(_SYS_FUTEX, address, _FUTEX_WAIT, expected, ctypes.byref(timeout), None, 0)


def wake_all(address):
    _syscall(_SYS_FUTEX, address, _FUTEX_WAKE, _INT_MAX, None, None, 0)
