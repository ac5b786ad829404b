#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Byte edits of the packaging matrix (tests/packaging/make-matrix.sh): the one-line
changes a customer who wants to pay less would try. Each parses the container's
structure (no pattern search in the payload) and writes a new file.

    edit.py tfdt-zero IN OUT         fragmented MP4: tfdt of the last third of the
                                     fragments set to 0
    edit.py sidx-insert IN OUT       fragmented MP4 (default-base-is-moof): a sidx after
                                     moov that claims one 2 s subsegment covers the file
    edit.py mkv-cluster-back IN OUT  Matroska: the Timestamp of the Cluster at 3/4 set to 0
    edit.py mkv-last-cluster-back IN OUT
                                     Matroska: the last Cluster's Timestamp moved back to
                                     the one of the Cluster at 3/4 (same byte length)
    edit.py avi-idx1-junk IN OUT     AVI: idx1 renamed to JUNK
    edit.py avi-idx1-half IN OUT     AVI: idx1 cut to its first half, the rest a JUNK chunk
"""
import struct
import sys


def die(msg):
    sys.exit("edit.py: " + msg)


# --- MP4 -------------------------------------------------------------------------------
def boxes(buf, start, end):
    """Yields (type, offset, header_size, size) of the boxes in buf[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, typ = struct.unpack(">I4s", buf[pos:pos + 8])
        hdr = 8
        if size == 1:
            size = struct.unpack(">Q", buf[pos + 8:pos + 16])[0]
            hdr = 16
        elif size == 0:
            size = end - pos
        if size < hdr or pos + size > end:
            die("bad box size at %d" % pos)
        yield typ.decode("latin-1"), pos, hdr, size
        pos += size


def child(buf, parent, typ):
    _, off, hdr, size = parent
    for b in boxes(buf, off + hdr, off + size):
        if b[0] == typ:
            return b
    return None


def tfdt_zero(buf):
    moofs = [b for b in boxes(buf, 0, len(buf)) if b[0] == "moof"]
    if len(moofs) < 3:
        die("fewer than 3 moof boxes")
    for moof in moofs[len(moofs) - len(moofs) // 3:]:
        for traf in (b for b in boxes(buf, moof[1] + moof[2], moof[1] + moof[3]) if b[0] == "traf"):
            tfdt = child(buf, traf, "tfdt")
            if tfdt is None:
                die("traf without tfdt")
            body = tfdt[1] + tfdt[2]
            n = 8 if buf[body] == 1 else 4
            buf[body + 4:body + 4 + n] = bytes(n)
    return buf


def sidx_insert(buf):
    top = list(boxes(buf, 0, len(buf)))
    moov = next((b for b in top if b[0] == "moov"), None)
    if moov is None or not any(b[0] == "moof" for b in top):
        die("not a fragmented mp4")
    trak = child(buf, moov, "trak")
    tkhd = child(buf, trak, "tkhd")
    mdhd = child(buf, child(buf, trak, "mdia"), "mdhd")
    body = tkhd[1] + tkhd[2]
    track_id = struct.unpack(">I", buf[body + (20 if buf[body] == 1 else 12):][:4])[0]
    body = mdhd[1] + mdhd[2]
    timescale = struct.unpack(">I", buf[body + (20 if buf[body] == 1 else 12):][:4])[0]
    at = moov[1] + moov[3]
    referenced = len(buf) - at
    sidx = struct.pack(">4sB3sIIIIHH", b"sidx", 0, b"\0\0\0", track_id, timescale, 0, 0, 0, 1)
    sidx += struct.pack(">III", referenced & 0x7FFFFFFF, 2 * timescale, 0x90000000)
    sidx = struct.pack(">I", len(sidx) + 4) + sidx
    return buf[:at] + sidx + buf[at:]


# --- Matroska ----------------------------------------------------------------------------
def vint(buf, pos, keep_marker):
    first = buf[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        die("bad EBML vint at %d" % pos)
    value = first if keep_marker else first & (0xFF >> length)
    for i in range(1, length):
        value = (value << 8) | buf[pos + i]
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return value, length, unknown


def ebml_elements(buf, start, end):
    pos = start
    while pos < end:
        eid, idlen, _ = vint(buf, pos, True)
        size, szlen, unknown = vint(buf, pos + idlen, False)
        data = pos + idlen + szlen
        if unknown:
            size = end - data
        yield eid, pos, data, size
        pos = data + size


def mkv_clusters(buf):
    segment = next((e for e in ebml_elements(buf, 0, len(buf)) if e[0] == 0x18538067), None)
    if segment is None:
        die("no Segment")
    clusters = [e for e in ebml_elements(buf, segment[2], min(len(buf), segment[2] + segment[3]))
                if e[0] == 0x1F43B675]
    if len(clusters) < 4:
        die("fewer than 4 clusters")
    return clusters


def cluster_timestamp(buf, cl):
    """(offset, length) of the value of the Cluster's Timestamp element."""
    ts = next((e for e in ebml_elements(buf, cl[2], cl[2] + cl[3]) if e[0] == 0xE7), None)
    if ts is None:
        die("Cluster without Timestamp")
    return ts[2], ts[3]


def mkv_cluster_back(buf):
    clusters = mkv_clusters(buf)
    off, n = cluster_timestamp(buf, clusters[len(clusters) * 3 // 4])
    buf[off:off + n] = bytes(n)
    return buf


def mkv_last_cluster_back(buf):
    clusters = mkv_clusters(buf)
    off, n = cluster_timestamp(buf, clusters[-1])
    src, m = cluster_timestamp(buf, clusters[len(clusters) * 3 // 4])
    value = int.from_bytes(buf[src:src + m], "big")
    if value >= 1 << (8 * n):
        die("the earlier Timestamp does not fit")
    buf[off:off + n] = value.to_bytes(n, "big")
    return buf


# --- AVI -----------------------------------------------------------------------------------
def avi_idx1(buf):
    if buf[0:4] != b"RIFF" or buf[8:12] != b"AVI ":
        die("not an AVI")
    end = min(len(buf), 8 + struct.unpack("<I", buf[4:8])[0])
    pos = 12
    while pos + 8 <= end:
        fourcc = bytes(buf[pos:pos + 4])
        size = struct.unpack("<I", buf[pos + 4:pos + 8])[0]
        if fourcc == b"idx1":
            return pos, size
        pos += 8 + size + (size & 1)
    die("no idx1")


def avi_idx1_junk(buf):
    pos, _ = avi_idx1(buf)
    buf[pos:pos + 4] = b"JUNK"
    return buf


def avi_idx1_half(buf):
    pos, size = avi_idx1(buf)
    half = (size // 16 // 2) * 16
    rest = size - half
    if rest < 8:
        die("idx1 too small")
    buf[pos + 4:pos + 8] = struct.pack("<I", half)
    junk = pos + 8 + half
    buf[junk:junk + 8] = b"JUNK" + struct.pack("<I", rest - 8)
    return buf


EDITS = {
    "tfdt-zero": tfdt_zero,
    "sidx-insert": sidx_insert,
    "mkv-cluster-back": mkv_cluster_back,
    "mkv-last-cluster-back": mkv_last_cluster_back,
    "avi-idx1-junk": avi_idx1_junk,
    "avi-idx1-half": avi_idx1_half,
}

if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in EDITS:
        die("usage: edit.py {%s} IN OUT" % ",".join(EDITS))
    with open(sys.argv[2], "rb") as f:
        data = bytearray(f.read())
    data = EDITS[sys.argv[1]](data)
    with open(sys.argv[3], "wb") as f:
        f.write(data)
