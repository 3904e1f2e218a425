"""Downloading one file over HTTP: resumed, retried, checked.

``fetch`` streams into ``PATH.part`` (resumed with an HTTP Range request after a dropped connection, retried
with back-off on network errors, falling back to the next URL), checks the MD5 it is given and renames the
file to ``PATH`` only then. A file that fails its checksum is deleted; a partial download stays, so that
running again resumes it.
"""

import gzip
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
import zlib

from tqdm.auto import tqdm

from keras_frelu import files
from keras_frelu.errors import DownloadError

CHUNK = 1 << 20
TIMEOUT = 60  # seconds without data before a connection counts as dropped
RETRIES = 4  # attempts per URL for network errors
BACKOFF = 0.5  # seconds before the first retry; doubles after each failure
USER_AGENT = "keras-frelu-download/0.1 (Python urllib)"


def md5_of(path):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Incomplete(OSError):
    """The connection ended before the announced length arrived."""


def _attempt(url, part, progress):
    """One request for ``url`` that appends to ``part``, resuming from its size with a Range request."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left to send: the partial file is complete
            return
        raise
    with response:
        if offset and (response.status != 206 or
                       not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-")):
            offset = 0  # the server ignored the Range request: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(part, "ab" if offset else "wb") as out, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=os.path.basename(url), disable=None if progress else True, leave=False) as bar:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                out.write(chunk)
                bar.update(len(chunk))
    received = os.path.getsize(part)
    if total is not None and received != total:
        raise _Incomplete(f"connection closed after {received:,} of {total:,} bytes")
    if total is None and not _gzip_complete(part):  # no announced length to check the end against
        raise _Incomplete(f"the gzip stream ends early after {received:,} bytes (the server sent no length)")


def _gzip_complete(path):
    """False for a gzip file whose stream is cut short; True for a whole one, and for any other format
    (which its conversion checks)."""
    with open(path, "rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            return True
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(CHUNK):
                pass
    except (EOFError, OSError, zlib.error):
        return False
    return True


def _permanent(error):
    """HTTP errors that retrying the same URL cannot fix (403, 404, ...), unlike timeouts and 5xx."""
    return isinstance(error, urllib.error.HTTPError) and 400 <= error.code < 500 and error.code not in (408, 429)


def _try_url(url, part, progress, retries, backoff, say):
    """Download ``url`` into ``part`` with up to ``retries`` attempts; None on success, else the problem."""
    for attempt in range(retries):
        try:
            _attempt(url, part, progress)
            return None
        except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets are OSErrors
            if files.storage_error(error, part) is not None:  # our disk, not the network: retrying cannot help
                raise files.storage_error(error, part) from None
            if isinstance(error, urllib.error.HTTPError):
                problem = f"{url}: HTTP {error.code} {error.reason}"
            else:
                problem = f"{url}: {getattr(error, 'reason', None) or error}"
            if _permanent(error) or attempt == retries - 1:
                return problem
            delay = backoff * 2 ** attempt
            say(f"{problem}; retrying in {delay:g} s")
            time.sleep(delay)


def fetch(urls, path, md5=None, progress=True, retries=RETRIES, backoff=BACKOFF, say=print):
    """Download the first of ``urls`` that works to ``path`` and return ``path``.

    Streams into ``path + ".part"`` (resumed by Range requests across retries and runs), checks ``md5``
    (None: no check), then renames. A file already at ``path`` is reused when it passes the check. Raises
    DownloadError when every URL fails or the checksum does not match (the bad file is deleted)."""
    name = os.path.basename(path)
    if os.path.exists(path):
        if md5 is None or md5_of(path) == md5:
            return path
        os.remove(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    part = path + ".part"
    for url in urls:
        say(f"{name}: downloading {url}")
        problem = _try_url(url, part, progress, retries, backoff, say)
        if problem is None and md5 is not None:
            actual = md5_of(part)
            if actual != md5:
                os.remove(part)
                problem = f"{url}: checksum mismatch (md5 {actual}, expected {md5})"
        if problem is None:
            os.replace(part, path)
            return path
        if url != urls[-1]:
            say(f"{name}: {problem}; trying the next URL")
    if "checksum mismatch" in problem:
        raise DownloadError(f"{name} from {problem}; the file was deleted: run again, try another --mirror, or "
                            "pass --no_checksum if you trust this source")
    kept = " (the partial download is kept and resumes)" if os.path.exists(part) else ""
    raise DownloadError(f"could not download {name} ({len(urls)} URL(s) tried; last: {problem}); check the "
                        f"network and run the same command again{kept}, or pass --mirror BASE_URL")
