"""The report's gaps section: the fit's gap frames per joint, joints turning fast, keypoints no camera saw, head
keypoints the head fit placed (``motion/<skeleton>[_person<k>].gaps.json``)."""

from __future__ import annotations

from html import escape


def _head_keypoints(gaps: dict) -> str:
    """": right_ear 300 frames, left_ear 12" from the gaps file's ``head_placed_keypoints`` ("" without it)."""
    per = sorted(((-sum(b - a for a, b in r), k) for k, r in (gaps.get("head_placed_keypoints") or {}).items()))
    return (": " + ", ".join(f"{k} {-n} frames" for n, k in per)) if per else ""


def gaps_html(gaps: dict | None, who: str = "") -> str:
    """The fit's gap frames per joint (``motion/<skeleton>[_person<k>].gaps.json``): where a joint was unseen."""
    if not gaps:
        return ""
    title = f"Gaps: {escape(who)}" if who else "Gaps"
    rows = "".join(f"<tr><td>{escape(str(j))}</td><td>{int(g.get('frames', 0))}</td><td>"
                   + escape(", ".join(f"{a}–{b - 1}" for a, b in g.get("ranges", [])))
                   + "</td></tr>" for j, g in sorted(gaps.get("joints", {}).items()))
    turns = "".join(f"<tr><td>{escape(str(j))}</td><td>" + escape(", ".join(f"{f}: {d:.0f}°" for f, d in v))
                    + "</td></tr>" for j, v in sorted((gaps.get("turns") or {}).items()))
    placed = "".join(f"<tr><td>{escape(str(k))}</td><td>" + escape(", ".join(f"{a}–{b - 1}" for a, b in r))
                     + "</td></tr>" for k, r in sorted((gaps.get("unseen_keypoints") or {}).items()))
    notes = ((f"<p>Joints turning over 45° from one frame to the next (a fast turn, or a twist the points leave free "
              f"over a nearly straight knee or elbow): check these frames.</p><table><tr><td>joint</td><td>frame: "
              f"degrees</td></tr>{turns}</table>") if turns else "") + (
        (f"<p>Keypoints no camera saw for 0.1 s or longer, placed by refine from the motion and the bones and fitted "
         f"as if measured: check these frames.</p><table><tr><td>keypoint</td><td>frames</td></tr>{placed}</table>")
        if placed else "") + (f"<p>{int(gaps['head_placed'])} head keypoints missing or off the head placed where the "
                              "rest of the head put them (the skull is rigid)" + escape(_head_keypoints(gaps))
                              + ".</p>" if gaps.get("head_placed") else "")
    if not rows:
        return f"<h2>{title}</h2><p>Every joint was seen in every fitted frame.</p>{notes}"
    return (f"<h2>{title}</h2><p>Frames where a joint was seen by no camera: the fit bridged them from the joints "
            "that were seen and the neighbouring frames; check them before use.</p>"
            f"<table><tr><td>joint</td><td>frames</td><td>frames (ranges)</td></tr>{rows}</table>{notes}")
