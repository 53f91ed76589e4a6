"""Spot a double hand clap (the hands-free pause) in a stream of microphone samples.

Pure numpy. A double clap is two sharp, broadband, quickly decaying bursts with silence
around and between them; see `ClapConfig` for every figure. The detector judges a ~1 ms
energy envelope in hops of 50 ms, at hop boundaries counted from the first sample, so
any split of the input into blocks gives the same answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from voice_guide.live.vad.frames import SILENT_POWER, Decisions, IgnoreMask, Power, frame_length
from voice_guide.sound.levels import Samples

# A clap is judged on a ~1 ms energy envelope: this many sub-blocks per frame.
_SUBBLOCKS = 10
# A candidate peak is the loudest sub-block within this many on either side.
_PEAK_REACH = 3
# The clap detector works in hops of this many frames (50 ms): cheap at a hundred
# pushes a second, and its ring of raw samples always holds what a hop needs.
_HOP_FRAMES = 5


@dataclass(frozen=True)
class ClapConfig:
    """Tuning of `ClapDetector`; levels in dB, times in seconds."""

    min_gap_s: float = 0.2
    """Shortest time between the two claps of a double clap (peak to peak)."""
    max_gap_s: float = 0.7
    """Longest time between the two claps of a double clap (peak to peak)."""
    min_peak_dbfs: float = -45.0
    """A clap's loudest millisecond reaches at least this level."""
    attack_s: float = 0.002
    """The envelope rises by `rise_db` to within 6 dB of its peak within this time."""
    rise_db: float = 20.0
    """Rise of the envelope over `attack_s`."""
    quiet_before_s: float = 0.1
    """Stretch before the attack that must be quiet (`quiet_db` under the peak); a word-final
    "t" follows its vowel closely, a clap follows a pause."""
    quiet_db: float = 25.0
    """How far under the peak the envelope sits before the attack, and (less 10 dB) between two claps."""
    decay_after_s: float = 0.04
    """From this long after the peak ..."""
    decay_until_s: float = 0.1
    """... to this long after it the clap must have died away (mean energy `decay_db` under the
    peak); speech goes on into a vowel."""
    decay_db: float = 20.0
    """Fall of the envelope from the peak over the decay window."""
    crest_db: float = 10.0
    """Peak over the mean energy from `quiet_before_s` before the attack to `decay_until_s` after the peak."""
    min_centroid_hz: float = 1000.0
    """A clap is broadband: the energy-weighted mean frequency of its first ms is at least this."""
    match_db: float = 10.0
    """The two claps' energies and initial decays differ by at most this."""
    ignore_tail_s: float = 0.15
    """Extra time ignored after ignored samples (the guide's own chimes have sharp attacks)."""


@dataclass(frozen=True)
class _Clap:
    peak: int  # sub-block index
    energy_db: float
    drop_db: float
    ceiling: float  # power the gap before the next clap must stay under


class ClapDetector:
    """Stream microphone samples in; get True at the frame where a double clap is recognised."""

    def __init__(self, sample_rate_hz: int, config: ClapConfig | None = None) -> None:
        cfg = config if config is not None else ClapConfig()
        self.config = cfg
        self.sample_rate_hz = sample_rate_hz
        self.frame_len = frame_length(sample_rate_hz)
        self.frame_s = self.frame_len / sample_rate_hz
        self._sub_s = self.frame_s / _SUBBLOCKS
        # Sub-block edges inside a frame; uneven by a sample when the frame does not divide by ten.
        self._edges = np.round(np.arange(_SUBBLOCKS + 1) * self.frame_len / _SUBBLOCKS).astype(np.intp)
        self._even = self.frame_len % _SUBBLOCKS == 0
        self._attack = self._subs(cfg.attack_s)
        self._before = self._subs(cfg.quiet_before_s)
        self._decay_from = self._subs(cfg.decay_after_s)
        self._decay_to = self._subs(cfg.decay_until_s)
        self._min_gap = self._subs(cfg.min_gap_s)
        self._max_gap = self._subs(cfg.max_gap_s)
        self._tail_subs = round(cfg.ignore_tail_s / self._sub_s)
        self._min_peak = 10.0 ** (cfg.min_peak_dbfs / 10.0)
        # Offsets of a candidate's neighbours: a peak is the loudest among them.
        self._around = np.concatenate((np.arange(-_PEAK_REACH, 0), np.arange(1, _PEAK_REACH + 1)))
        # Enough envelope to look back over a whole double clap from its second peak.
        self._keep = self._max_gap + self._before + self._attack + self._decay_to + 3 * _SUBBLOCKS
        # Raw samples are only needed around a peak, a little over `decay_until_s` ago.
        need = (self._decay_to + (3 + _HOP_FRAMES) * _SUBBLOCKS) * self.frame_len // _SUBBLOCKS
        self._ring = np.zeros(1 << max(10, (2 * need - 1).bit_length()), dtype=np.float32)
        self._written = 0  # samples written to the ring so far
        # Samples gathered for the next hop, and whether any of them is to be ignored.
        self._hop = np.zeros(self.frame_len * _HOP_FRAMES, dtype=np.float32)
        self._hop_fill = 0
        self._hop_ignored = False
        self._pushed = 0  # samples pushed so far
        self._hops = 0  # hops of _HOP_FRAMES frames handled so far
        # Envelope history in preallocated buffers (a hundred pushes a second must not
        # each copy a second of history); the oldest is dropped in one move when full.
        capacity = 2 * self._keep + _HOP_FRAMES * _SUBBLOCKS
        self._pbuf = np.zeros(capacity, dtype=np.float64)
        self._mbuf = np.zeros(capacity, dtype=np.bool_)
        self._fill = 0
        self._base = 0  # sub-block index of self._pbuf[0]
        self._next = 0  # first sub-block not yet considered as a peak
        self._tail = 0
        self._claps: list[_Clap] = []
        self._pair_start = -1

    def _subs(self, seconds: float) -> int:
        return max(1, round(seconds / self._sub_s))

    @property
    def frames_done(self) -> int:
        """Return how many 10 ms frames have been pushed so far."""
        return self._pushed // self.frame_len

    @property
    def pair_start_frame(self) -> int:
        """Return the frame in which the first clap of the last double clap began; -1 before any."""
        return self._pair_start

    def push(self, samples: Samples, ignore: IgnoreMask = False) -> Decisions:
        """Add mono samples; return, per completed 10 ms frame, whether a double clap was recognised in it.

        A double clap is recognised 100-150 ms after the peak of its second clap, once
        that clap's decay has been heard. Ignored samples work as for `VoiceDetector`.
        """
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        whole = isinstance(ignore, bool | np.bool_)
        flags = None if whole else np.asarray(ignore, dtype=np.bool_).reshape(-1)
        if flags is not None and flags.size != x.size:
            raise ValueError(f"ignore mask has {flags.size} entries for {x.size} samples")
        before = self._pushed // self.frame_len
        self._pushed += x.size
        out = np.zeros(self._pushed // self.frame_len - before, dtype=np.bool_)
        at, size = 0, self._hop.size
        while at < x.size:
            take = min(size - self._hop_fill, x.size - at)
            self._hop[self._hop_fill : self._hop_fill + take] = x[at : at + take]
            skip = bool(ignore) if flags is None else bool(flags[at : at + take].any())
            self._hop_ignored = self._hop_ignored or skip
            self._hop_fill += take
            at += take
            if self._hop_fill == size:
                self._hops += 1
                if self._hop_step(self._hop, self._hop_ignored):
                    out[self._hops * _HOP_FRAMES - 1 - before] = True
                self._hop_fill, self._hop_ignored = 0, False
        return out

    def _hop_step(self, samples: npt.NDArray[np.float32], ignored: bool) -> bool:
        # Work is done once per hop of frames, at hop boundaries counted from the
        # first sample, so the outcome does not depend on the block sizes pushed.
        self._store(samples)
        self._append(samples.reshape(_HOP_FRAMES, self.frame_len), ignored)
        total = self._base + self._fill
        # A peak is judged once everything it is compared with has arrived.
        last = total - self._decay_to - 1
        hit = False
        for peak in self._candidates(last):
            hit = self._pair(peak) or hit
        self._next = max(self._next, last + 1)
        return hit

    def _store(self, x: npt.NDArray[np.float32]) -> None:
        size = self._ring.size
        at = self._written % size
        first = min(x.size, size - at)
        self._ring[at : at + first] = x[:first]
        self._ring[: x.size - first] = x[first:]
        self._written += x.size

    def _samples(self, sub_start: int, sub_stop: int) -> npt.NDArray[np.float64]:
        """Return the raw samples of sub-blocks [sub_start, sub_stop), plus the one before them."""
        lo = self._sample_at(sub_start) - 1
        hi = self._sample_at(sub_stop)
        idx = np.arange(max(lo, 0), hi) % self._ring.size
        return self._ring[idx].astype(np.float64)

    def _sample_at(self, sub: int) -> int:
        frame, part = divmod(sub, _SUBBLOCKS)
        return frame * self.frame_len + int(self._edges[part])

    def _append(self, frames: npt.NDArray[np.float32], ignored: bool) -> None:
        if self._even:
            blocks = frames.reshape(-1, self.frame_len // _SUBBLOCKS)
            power = np.einsum("ij,ij->i", blocks, blocks) / np.float32(blocks.shape[1])
        else:
            sq = np.cumsum(frames.astype(np.float64) ** 2, axis=1)
            ends = sq[:, self._edges[1:] - 1]
            starts = np.concatenate((np.zeros((sq.shape[0], 1)), ends[:, :-1]), axis=1)
            power = ((ends - starts) / np.diff(self._edges)).reshape(-1)
        muted: npt.NDArray[np.bool_] | bool = ignored
        if ignored:
            self._tail = self._tail_subs
        elif self._tail:
            muted = np.arange(power.size) < self._tail
            self._tail = max(0, self._tail - power.size)
        fill, size = self._fill, power.size
        if fill + size > self._pbuf.size:
            drop = fill - self._keep
            self._pbuf[: self._keep] = self._pbuf[drop:fill]
            self._mbuf[: self._keep] = self._mbuf[drop:fill]
            self._base += drop
            fill = self._keep
        self._pbuf[fill : fill + size] = power
        self._mbuf[fill : fill + size] = muted
        self._fill = fill + size

    @property
    def _power(self) -> Power:
        return self._pbuf[: self._fill]

    @property
    def _muted(self) -> npt.NDArray[np.bool_]:
        return self._mbuf[: self._fill]

    def _candidates(self, last: int) -> list[int]:
        # Loud local maxima that rose 20 dB within the few ms before them; elementwise
        # comparisons only, so the result does not depend on how blocks were split.
        lo = max(self._next, self._base + self._before + self._attack + 2 * _SUBBLOCKS)
        if last < lo:
            return []
        p = self._power
        start, stop = lo - self._base, last + 1 - self._base
        here = p[start:stop]
        if here.max() < self._min_peak:
            return []
        # Lowest envelope over the 16 sub-blocks ending `attack` before each sub-block,
        # by doubling (four vector ops): the attack test in _judge looks there, since an
        # onset lies at most _SUBBLOCKS before its peak.
        reach = start - self._attack - 15
        low = p[reach : stop - self._attack]
        for width in (1, 2, 4, 8):
            low = np.minimum(low[width:], low[:-width])
        rise = 10.0 ** (self.config.rise_db / 10.0)
        idx = np.flatnonzero((here >= self._min_peak) & (low * rise <= here)) + start
        if not idx.size:
            return []
        top = p[idx]
        around = p[idx[:, None] + self._around]
        ok = (top >= around[:, :_PEAK_REACH].max(axis=1)) & (top > around[:, _PEAK_REACH:].max(axis=1))
        found = cast(list[int], (idx[ok] + self._base).tolist())
        return found

    def _judge(self, peak: int) -> _Clap | None:
        cfg = self.config
        i = peak - self._base
        p = self._power
        top = float(p[i])
        # The burst may peak a few ms in; its onset is where it first came within 6 dB of the peak.
        onset = i
        while onset > i - _SUBBLOCKS and p[onset - 1] * 4.0 >= top:
            onset -= 1
        start = onset - self._attack - self._before
        end = i + self._decay_to + 1
        if start < 0 or self._muted[start:end].any():
            return None
        checks = (
            (float(p[onset - self._attack]), cfg.rise_db),  # sharp attack
            (float(np.mean(p[start : onset - self._attack])), cfg.quiet_db),  # silence before
            (float(np.mean(p[i + self._decay_from : end])), cfg.decay_db),  # died away
            (float(np.mean(p[start:end])), cfg.crest_db),  # stands out of its surroundings
        )
        if any(level * 10.0 ** (db / 10.0) > top for level, db in checks):
            return None
        # First differences weigh energy by (2 sin(pi f / rate))^2, which gives the mean
        # frequency of the burst without an FFT.
        x = self._samples(peak, peak + self._attack + 1)
        d = np.diff(x)
        ratio = float(np.dot(d, d)) / max(float(np.dot(x[1:], x[1:])), SILENT_POWER)
        centroid_hz = math.asin(min(1.0, math.sqrt(ratio) / 2.0)) * self.sample_rate_hz / math.pi
        if centroid_hz < cfg.min_centroid_hz:
            return None
        body = float(np.sum(p[i : i + self._decay_from]))
        early = float(np.mean(p[i + self._attack : i + self._decay_from]))
        return _Clap(
            peak,
            10.0 * math.log10(max(body, SILENT_POWER)),
            10.0 * math.log10(top / max(early, SILENT_POWER)),
            top * 10.0 ** (-cfg.quiet_db / 10.0),
        )

    def _pair(self, peak: int) -> bool:
        clap = self._judge(peak)
        if clap is None:
            return False
        cfg = self.config
        self._claps = [c for c in self._claps if peak - c.peak <= self._max_gap]
        for first in self._claps:
            if peak - first.peak < self._min_gap:
                continue
            if abs(first.energy_db - clap.energy_db) > cfg.match_db or abs(first.drop_db - clap.drop_db) > cfg.match_db:
                continue
            # Between the two, the room must stay nearly as quiet as before a clap: talk is no gap.
            lo = first.peak + self._decay_to - self._base
            hi = peak - self._attack - _SUBBLOCKS - self._base
            if hi > lo and float(np.max(self._power[lo:hi])) > min(first.ceiling, clap.ceiling) * 10.0:
                continue
            self._claps = []
            # The frame holding the first clap's onset (its peak is at most one frame in).
            self._pair_start = max(0, (first.peak - self._attack) // _SUBBLOCKS)
            return True
        self._claps.append(clap)
        return False


def detect_double_claps(samples: Samples, sample_rate_hz: int, config: ClapConfig | None = None) -> list[float]:
    """Return the times in seconds at which double claps are recognised in a whole signal."""
    detector = ClapDetector(sample_rate_hz, config)
    hits = np.flatnonzero(detector.push(samples))
    return [float(i + 1) * detector.frame_s for i in hits]
