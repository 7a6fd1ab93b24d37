"""Is the system clock NTP-synchronised? Every manifest says so, because its times are evidence.

First the kernel (adjtimex(2) with no modes only reads, needs no privilege and works in
containers): the clock is unsynchronised while STA_UNSYNC is set or the call returns TIME_ERROR.
Then `timedatectl show -p NTPSynchronized --value`. Anything that fails means "not known to be
synchronised": False, never an exception.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import subprocess
import sys

__all__ = ["clock_synchronised"]

log = logging.getLogger(__name__)

STA_UNSYNC = 0x0040
TIME_ERROR = 5


class _Timex(ctypes.Structure):
    # struct timex (linux/timex.h) up to `status`; the padding covers the rest of the kernel's
    # struct (208 bytes on 64-bit) with room to spare, so the kernel never writes past our buffer.
    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 512),
    )


def kernel_clock_synchronised() -> bool | None:
    """The kernel's view through adjtimex(2); None when it cannot be asked."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError):
        return None
    adjtimex.argtypes = (ctypes.POINTER(_Timex),)
    adjtimex.restype = ctypes.c_int
    tx = _Timex()  # modes = 0: read only
    state = adjtimex(ctypes.byref(tx))
    if state < 0:
        log.debug("adjtimex failed: errno %d", ctypes.get_errno())
        return None
    return state != TIME_ERROR and not tx.status & STA_UNSYNC


def timedatectl_clock_synchronised(timeout: float = 2.0) -> bool | None:
    """systemd's view; None when timedatectl is missing, fails or says something unexpected."""
    try:
        done = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    answer = done.stdout.strip().lower()
    if done.returncode != 0 or answer not in ("yes", "no"):
        return None
    return answer == "yes"


def clock_synchronised() -> bool:
    """True only when the kernel or systemd says the clock is synchronised."""
    try:
        for ask in (kernel_clock_synchronised, timedatectl_clock_synchronised):
            answer = ask()
            if answer is not None:
                return answer
    except Exception:  # never let a clock check take an event down with it
        log.exception("checking the clock's synchronisation failed")
    return False
