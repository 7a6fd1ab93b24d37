"""The topic tree: build and parse agree, and anything else is refused with a WireError."""

from __future__ import annotations

import operator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import Topic, TopicKind, WireError, parse_topic
from wire.topics import CENTRAL_SUBSCRIPTIONS, ack_topic, event_topic, file_topic, stats_topic, status_topic

SHA = "ab" * 32


def test_every_kind_builds_and_parses_back() -> None:
    built = {
        "gw/v1/box-1/status": Topic(TopicKind.STATUS, "box-1"),
        "gw/v1/box-1/stats": Topic(TopicKind.STATS, "box-1"),
        "gw/v1/box-1/ack": Topic(TopicKind.ACK, "box-1"),
        "gw/v1/box-1/site_a/cam-1/event": Topic(TopicKind.EVENT, "box-1", "site_a", "cam-1"),
        f"gw/v1/box-1/site_a/cam-1/file/{SHA}/init": Topic(TopicKind.FILE_INIT, "box-1", "site_a", "cam-1", SHA),
        f"gw/v1/box-1/site_a/cam-1/file/{SHA}/0": Topic(
            TopicKind.FILE_SEGMENT, "box-1", "site_a", "cam-1", SHA, offset=0
        ),
        f"gw/v1/box-1/site_a/cam-1/file/{SHA}/262144": Topic(
            TopicKind.FILE_SEGMENT, "box-1", "site_a", "cam-1", SHA, offset=262144
        ),
        f"gw/v1/box-1/site_a/cam-1/file/{SHA}/fin/1550": Topic(
            TopicKind.FILE_FIN, "box-1", "site_a", "cam-1", SHA, size=1550
        ),
    }
    for text, topic in built.items():
        assert parse_topic(text) == topic
        assert str(topic) == text
    assert status_topic("box-1") == "gw/v1/box-1/status"
    assert stats_topic("box-1") == "gw/v1/box-1/stats"
    assert ack_topic("box-1") == "gw/v1/box-1/ack"
    assert event_topic("box-1", "site_a", "cam-1") == "gw/v1/box-1/site_a/cam-1/event"
    assert file_topic(TopicKind.FILE_FIN, "box-1", "s", "c", SHA, offset=5, size=9).endswith(f"{SHA}/fin/9")
    assert file_topic(TopicKind.FILE_SEGMENT, "box-1", "s", "c", SHA, offset=5, size=9).endswith(f"{SHA}/5")


def test_the_device_id_comes_first_so_one_acl_pattern_confines_a_device() -> None:
    for topic in (
        status_topic("box-1"),
        ack_topic("box-1"),
        event_topic("box-1", "s", "c"),
        file_topic(TopicKind.FILE_INIT, "box-1", "s", "c", SHA),
    ):
        assert topic.startswith("gw/v1/box-1/")
    assert CENTRAL_SUBSCRIPTIONS == (
        "gw/v1/+/status",
        "gw/v1/+/stats",
        "gw/v1/+/+/+/event",
        "gw/v1/+/+/+/file/#",
    )


BAD_TOPICS = [
    "",
    "/",
    "gw/v1",
    "gw/v1/box-1",
    "gw/v1/box-1/",
    "gw/v2/box-1/status",
    "GW/v1/box-1/status",
    "/gw/v1/box-1/status",
    "gw/v1/box-1/status/",
    "gw/v1/box-1/status/extra",
    "gw/v1/box-1/ack/x",
    "gw/v1/+/status",  # wildcards are never a level of a real topic
    "gw/v1/#",
    "gw/v1/box-1/+/cam-1/event",
    "gw/v1/box-1/site/#",
    "gw/v1/box-1/site/cam-1/file/#",
    "gw/v1/../status",  # nothing that could climb out of a folder
    "gw/v1/box-1/../cam-1/event",
    "gw/v1/box-1/site/../event",
    "gw/v1/./status",
    "gw/v1/Box-1/status",  # upper case
    "gw/v1/box-1/Site/cam-1/event",
    "gw/v1/box-1/site/CAM/event",
    "gw/v1/-box/status",  # must start with a letter or digit
    "gw/v1/_box/status",
    "gw/v1/box.1/status",
    "gw/v1/box 1/status",
    "gw/v1/box\n/status",  # a trailing newline must not slip through
    "gw/v1/box-1\n/status",
    "gw/v1/box\x00/status",
    "gw/v1/" + "a" * 64 + "/status",  # 64 characters: one too many
    "gw/v1/box-1/site/cam-1",
    "gw/v1/box-1/site/cam-1/events",
    "gw/v1/box-1/site/cam-1/event/x",
    "gw/v1/box-1/site/cam-1/file",
    f"gw/v1/box-1/site/cam-1/file/{SHA}",
    f"gw/v1/box-1/site/cam-1/file/{SHA.upper()}/init",
    f"gw/v1/box-1/site/cam-1/file/{SHA[:-1]}/init",
    f"gw/v1/box-1/site/cam-1/file/{SHA}0/init",
    f"gw/v1/box-1/site/cam-1/file/{SHA}\n/init",
    f"gw/v1/box-1/site/cam-1/file/{SHA}/init/x",
    f"gw/v1/box-1/site/cam-1/file/{SHA}/fin",
    f"gw/v1/box-1/site/cam-1/file/{SHA}/fin/1/2",
    f"gw/v1/box-1/site/cam-1/file/{SHA}/end/1",
]
BAD_NUMBERS = ["-1", "+1", "01", "00", "1.5", "1e3", "0x10", " 1", "1 ", "1\n", "", "²", "١٢", "１", "9" * 16]


@pytest.mark.parametrize("topic", BAD_TOPICS)
def test_bad_topics_are_refused(topic: str) -> None:
    with pytest.raises(WireError):
        parse_topic(topic)


@pytest.mark.parametrize("number", BAD_NUMBERS)
def test_bad_offsets_and_sizes_are_refused(number: str) -> None:
    with pytest.raises(WireError, match="offset"):
        parse_topic(f"gw/v1/box-1/s/c/file/{SHA}/{number}")
    with pytest.raises(WireError, match="size"):
        parse_topic(f"gw/v1/box-1/s/c/file/{SHA}/fin/{number}")


def test_the_largest_offset_is_15_digits() -> None:
    assert parse_topic(f"gw/v1/box-1/s/c/file/{SHA}/{'9' * 15}").offset == 10**15 - 1


@pytest.mark.parametrize(
    "build",
    [
        lambda: status_topic("Box"),
        lambda: status_topic("box/1"),
        lambda: stats_topic("+"),
        lambda: ack_topic("#"),
        lambda: ack_topic(""),
        lambda: event_topic("box-1", "..", "cam"),
        lambda: event_topic("box-1", "site", "cam/x"),
        lambda: event_topic("box-1", "site", "Cam"),
        lambda: file_topic(TopicKind.FILE_INIT, "box-1", "s", "c", "../../etc/passwd"),
        lambda: file_topic(TopicKind.FILE_INIT, "box-1", "s", "c", SHA.upper()),
        lambda: file_topic(TopicKind.FILE_SEGMENT, "box-1", "s", "c", SHA, offset=-1),
        lambda: file_topic(TopicKind.FILE_SEGMENT, "box-1", "s", "c", SHA, offset=10**15),
        lambda: file_topic(TopicKind.FILE_SEGMENT, "box-1", "s", "c", SHA, offset=True),
        lambda: file_topic(TopicKind.FILE_FIN, "box-1", "s", "c", SHA, size=-5),
        lambda: file_topic(TopicKind.EVENT, "box-1", "s", "c", SHA),
        lambda: Topic(TopicKind.STATUS, "box-1", site="s"),
        lambda: Topic(TopicKind.EVENT, "box-1", "s", "c", SHA),
        lambda: Topic(TopicKind.EVENT, "box-1"),
        lambda: Topic(TopicKind.FILE_INIT, "box-1", "s", "c", SHA, offset=0),
        lambda: Topic(TopicKind.FILE_SEGMENT, "box-1", "s", "c", SHA),
        lambda: Topic(TopicKind.FILE_FIN, "box-1", "s", "c", SHA, offset=3, size=4),
    ],
)
def test_builders_refuse_what_parse_would(build: object) -> None:
    with pytest.raises(WireError):
        build()  # type: ignore[operator]


# -- properties ---------------------------------------------------------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
ids = st.builds(operator.add, st.sampled_from(_ALNUM), st.text(_ALNUM + "_-", max_size=62))
shas = st.binary(min_size=32, max_size=32).map(bytes.hex)
numbers = st.integers(min_value=0, max_value=10**15 - 1)
LEVELS = [
    "gw",
    "v1",
    "v2",
    "box-1",
    "s",
    "c",
    "file",
    "init",
    "fin",
    "event",
    "status",
    "stats",
    "ack",
    SHA,
    "0",
    "01",
    "-1",
    "1550",
    "+",
    "#",
    "..",
    "",
    "Box",
    "²",
]


@st.composite
def topics(draw: st.DrawFn) -> Topic:
    kind = draw(st.sampled_from(list(TopicKind)))
    device = draw(ids)
    if kind in (TopicKind.STATUS, TopicKind.STATS, TopicKind.ACK):
        return Topic(kind, device)
    site, camera = draw(ids), draw(ids)
    if kind is TopicKind.EVENT:
        return Topic(kind, device, site, camera)
    sha = draw(shas)
    offset = draw(numbers) if kind is TopicKind.FILE_SEGMENT else None
    size = draw(numbers) if kind is TopicKind.FILE_FIN else None
    return Topic(kind, device, site, camera, sha, offset=offset, size=size)


@settings(deadline=None)
@given(topics())
def test_any_valid_topic_round_trips(topic: Topic) -> None:
    assert parse_topic(str(topic)) == topic


@settings(deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_wire_error(text: str) -> None:
    try:
        topic = parse_topic(text)
    except WireError:
        return
    assert str(topic) == text


@settings(deadline=None)
@given(st.lists(st.one_of(st.sampled_from(LEVELS), st.text(max_size=6)), min_size=1, max_size=9))
def test_topic_shaped_text_parses_to_itself_or_raises_wire_error(levels: list[str]) -> None:
    text = "/".join(levels)
    for candidate in (text, "gw/v1/" + text):
        try:
            topic = parse_topic(candidate)
        except WireError:
            continue
        assert str(topic) == candidate  # one spelling per topic: nothing else is accepted
