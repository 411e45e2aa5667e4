"""A second fragment that runs once the browser shows a stroke's answer (Streamlit has no such call).

A stroke reruns only the fragment with the canvas, and everything that fragment sends is
rendered by the browser before the new answer shows. So that fragment sends only the answer
and its chart; the rest (what the model sees, "Right?", ...) is a second fragment that the
browser asks for once the answer is on the page:

- `announce(key)`, in the answer's fragment, tells the page which drawing was just answered
  (a window event, sent after the browser has painted the answer);
- `follow(key)`, in the second fragment, which shows drawing `key`: when the page announces
  another drawing, it asks the server for a rerun of its own fragment (a trigger value).

Two tiny inline components (st.components.v2, no package) that render nothing visible.
"""

import streamlit as st

_ANNOUNCE_JS = """
export default function (component) {
  const key = (component.data && component.data.key) || '';
  window.__digitrecAnswered = key;
  // After the browser has painted the answer: a frame, then a task.
  requestAnimationFrame(() => setTimeout(() => {
    window.dispatchEvent(new CustomEvent('digitrec:answered', { detail: key }));
  }, 0));
}
"""

_FOLLOW_JS = """
export default function (component) {
  const { data, setTriggerValue } = component;
  const shown = (data && data.key) || '';
  let asked = null;  // until this fragment renders again (then with the drawing it was asked for)
  const check = () => {
    const latest = window.__digitrecAnswered;
    if (latest === undefined || latest === shown || latest === asked) return;
    asked = latest;  // once per drawing, however often the page announces it
    setTriggerValue('answered', latest);
  };
  window.addEventListener('digitrec:answered', check);
  check();
  return () => window.removeEventListener('digitrec:answered', check);
}
"""

# Registered once, when this module is first imported (a page script reruns; this module does not).
_announce = st.components.v2.component("digitrec.answer_announce", js=_ANNOUNCE_JS)
_follow = st.components.v2.component("digitrec.answer_follow", js=_FOLLOW_JS)


def announce(key: str | None) -> None:
    """In the answer's fragment, after the answer: drawing `key` is answered (None: no drawing)."""
    _announce(key="answer-announce", data={"key": key or ""}, width="stretch", height="content")


def follow(key: str | None) -> None:
    """In the second fragment: it shows drawing `key`; rerun it when another one is answered."""
    _follow(key="answer-follow", data={"key": key or ""}, on_answered_change=lambda: None,
            width="stretch", height="content")
