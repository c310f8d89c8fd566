"""Events carrying lists (issue 17): the subscribe-message events (one ``<List>`` per
template) and the beacon shake (``<AroundBeacon>`` repeated), posted through the real
callback in plaintext and in safe mode; a repeated message field is still refused."""

from __future__ import annotations

import itertools

import pytest

from tests.support.wechat import OA_ID, FakeWeChat, answering_brand, text_xml
from wechat import router
from wechat.events import SubscribeChoice, SubscribeSent
from wechat.wire import BadMessage, parse_xml

OPENID = "otFpruAK8D-E6EfStSYonYSBZ8_4"
TEMPLATE_A = "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc"
TEMPLATE_B = "9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI"
MODES = ["plaintext", "aes"]
_times = itertools.count(1610969440)

# WeChat's documented example, as sent
POPUP = (
    "<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName><FromUserName><![CDATA["
    "otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName><CreateTime>1610969440</CreateTime><MsgType>"
    "<![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_popup_event]]></Event>"
    "<SubscribeMsgPopupEvent><List><TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3O"
    "c0NIc]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>"
    "<PopupScene>2</PopupScene></List><List><TemplateId><![CDATA[9nLIlbOQZC5Y89AZteFEux3WCXRRR"
    "G5Wfzkpssu4bLI]]></TemplateId><SubscribeStatusString><![CDATA[reject]]>"
    "</SubscribeStatusString><PopupScene>2</PopupScene></List></SubscribeMsgPopupEvent></xml>"
)
# WeChat's documented shape of a shake near beacons (ShakearoundUserShake)
BEACONS = """<xml>
<ToUserName><![CDATA[gh_123456789abc]]></ToUserName>
<FromUserName><![CDATA[otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName>
<CreateTime>1433332012</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[ShakearoundUserShake]]></Event>
<ChosenBeacon>
<Uuid><![CDATA[FDA50693-A4E2-4FB1-AFCF-C6EB07647825]]></Uuid>
<Major>10001</Major>
<Minor>10002</Minor>
<Distance>0.057</Distance>
</ChosenBeacon>
<AroundBeacons>
<AroundBeacon>
<Uuid><![CDATA[FDA50693-A4E2-4FB1-AFCF-C6EB07647825]]></Uuid>
<Major>10001</Major>
<Minor>10003</Minor>
<Distance>166.816</Distance>
</AroundBeacon>
<AroundBeacon>
<Uuid><![CDATA[FDA50693-A4E2-4FB1-AFCF-C6EB07647825]]></Uuid>
<Major>10001</Major>
<Minor>10004</Minor>
<Distance>15.013</Distance>
</AroundBeacon>
</AroundBeacons>
</xml>"""


def event(name: str, body: str) -> str:
    """An event of ``OPENID`` with a CreateTime of its own (events are deduplicated by it)."""
    return (
        f"<xml><ToUserName><![CDATA[{OA_ID}]]></ToUserName>"
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{next(_times)}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{name}]]></Event>{body}</xml>"
    )


def choice(template: str, status: str, scene: int | str | None = None) -> str:
    popup = "" if scene is None else f"<PopupScene>{scene}</PopupScene>"
    return (
        f"<List><TemplateId><![CDATA[{template}]]></TemplateId>"
        f"<SubscribeStatusString><![CDATA[{status}]]></SubscribeStatusString>{popup}</List>"
    )


def sent(template: str, msg_id: str, code: int, status: str) -> str:
    return (
        f"<List><TemplateId><![CDATA[{template}]]></TemplateId><MsgID>{msg_id}</MsgID>"
        f"<ErrorCode>{code}</ErrorCode><ErrorStatus><![CDATA[{status}]]></ErrorStatus></List>"
    )


def beacon(minor: int, distance: str) -> str:
    return (
        "<AroundBeacon><Uuid><![CDATA[FDA50693-A4E2-4FB1-AFCF-C6EB07647825]]></Uuid>"
        f"<Major>10001</Major><Minor>{minor}</Minor><Distance>{distance}</Distance></AroundBeacon>"
    )


@pytest.fixture
def wx(client, ctx):
    return FakeWeChat(client, answering_brand().slug)


@pytest.fixture
def seen():
    """Contexts the router handed to a handler of every event."""
    calls: list[router.Context] = []

    def record(ctx):
        calls.append(ctx)

    router.on("event", priority=1)(record)
    return calls


def post(wx, xml: str, mode: str):
    resp = wx.post_plain(xml) if mode == "plaintext" else wx.post_aes(xml)
    assert resp.status_code == 200, resp.data
    assert resp.data == b"success"  # no handler answers these events
    return resp


@pytest.mark.parametrize("mode", MODES)
def test_the_documented_popup_event_gives_both_choices_in_order(wx, seen, mode):
    answers = []
    router.on("event", "subscribe_msg_popup_event")(
        lambda ctx: answers.append(ctx.subscribe_choices)
    )
    post(wx, POPUP, mode)
    expected = (
        SubscribeChoice(template_id=TEMPLATE_A, status="accept", popup_scene=2),
        SubscribeChoice(template_id=TEMPLATE_B, status="reject", popup_scene=2),
    )
    assert answers == [expected]
    [ctx] = seen
    assert (ctx.openid, ctx.event, ctx.subscribe_sent) == (
        OPENID,
        "subscribe_msg_popup_event",
        (),
    )
    assert [e["TemplateId"] for e in ctx.items("SubscribeMsgPopupEvent", "List")] == [
        TEMPLATE_A,
        TEMPLATE_B,
    ]


@pytest.mark.parametrize("mode", MODES)
def test_the_documented_beacon_shake_gives_the_beacons_in_order(wx, seen, mode):
    post(wx, BEACONS, mode)
    [ctx] = seen
    assert ctx.event == "ShakearoundUserShake"
    assert ctx.raw["ChosenBeacon"]["Minor"] == "10002"
    assert [(b["Minor"], b["Distance"]) for b in ctx.items("AroundBeacons", "AroundBeacon")] == [
        ("10003", "166.816"),
        ("10004", "15.013"),
    ]
    shake = ctx.wechatpy_message()
    assert shake.chosen_beacon["distance"] == pytest.approx(0.057)
    assert [b["minor"] for b in shake.around_beacons] == ["10003", "10004"]


@pytest.mark.parametrize("mode", MODES)
def test_one_template_is_a_list_of_one(wx, seen, mode):
    post(
        wx,
        event(
            "subscribe_msg_popup_event",
            f"<SubscribeMsgPopupEvent>{choice(TEMPLATE_B, 'accept', 0)}</SubscribeMsgPopupEvent>",
        ),
        mode,
    )
    post(
        wx,
        event("ShakearoundUserShake", f"<AroundBeacons>{beacon(7, '1.5')}</AroundBeacons>"),
        mode,
    )
    popup, shake = seen
    assert popup.subscribe_choices == (SubscribeChoice(TEMPLATE_B, "accept", 0),)
    assert len(popup.items("SubscribeMsgPopupEvent", "List")) == 1
    assert [b["Minor"] for b in shake.items("AroundBeacons", "AroundBeacon")] == ["7"]


def test_change_and_sent_events_are_typed_too(wx, seen):
    post(
        wx,
        event(
            "subscribe_msg_change_event",
            f"<SubscribeMsgChangeEvent>{choice(TEMPLATE_A, 'reject')}</SubscribeMsgChangeEvent>",
        ),
        "aes",
    )
    post(
        wx,
        event(
            "subscribe_msg_sent_event",
            "<SubscribeMsgSentEvent>"
            + sent(TEMPLATE_A, "1700827132819554304", 0, "success")
            + sent(TEMPLATE_B, "1700827132819554305", 20001, "failed:user refuse to accept")
            + "</SubscribeMsgSentEvent>",
        ),
        "plaintext",
    )
    change, outcome = seen
    assert change.subscribe_choices == (SubscribeChoice(TEMPLATE_A, "reject", None),)
    assert outcome.subscribe_choices == ()
    assert outcome.subscribe_sent == (
        SubscribeSent(TEMPLATE_A, "1700827132819554304", 0, "success"),
        SubscribeSent(TEMPLATE_B, "1700827132819554305", 20001, "failed:user refuse to accept"),
    )


def test_a_choice_without_its_template_is_refused_before_any_handler(wx, seen):
    broken = "<List><SubscribeStatusString>accept</SubscribeStatusString></List>"
    for body in (
        f"<SubscribeMsgPopupEvent>{broken}</SubscribeMsgPopupEvent>",
        f"<SubscribeMsgPopupEvent>{choice(TEMPLATE_A, 'accept', 'x')}</SubscribeMsgPopupEvent>",
        "<SubscribeMsgPopupEvent><List>text</List></SubscribeMsgPopupEvent>",
    ):
        assert wx.post_plain(event("subscribe_msg_popup_event", body)).status_code == 400
    assert seen == []


@pytest.mark.parametrize("mode", MODES)
def test_a_repeated_message_field_is_still_refused(wx, seen, mode):
    twice = text_xml(OPENID, "hi", 42).replace(
        "</FromUserName>", "</FromUserName><FromUserName>oSomebodyElse</FromUserName>"
    )
    resp = wx.post_plain(twice) if mode == "plaintext" else wx.post_aes(twice)
    assert resp.status_code == 400
    again = "<Event>unsubscribe</Event>"
    assert wx.post_plain(event("subscribe", again)).status_code == 400
    assert seen == []


def test_a_second_encrypt_in_the_envelope_is_refused(wx, seen):
    ok = text_xml(OPENID, "hi", 43)
    resp = wx.post_aes(ok, envelope_extra="<Encrypt><![CDATA[AAAA]]></Encrypt>")
    assert resp.status_code == 400
    assert wx.post_aes(ok).status_code == 200  # the same message, once
    assert seen == []  # a text message: no event handler ran


def test_parse_xml_keeps_lists_below_the_root_only():
    msg = parse_xml(b"<xml><A><B>1</B><C/><B>2</B><B>3</B></A><D><B>4</B></D></xml>")
    assert msg == {"A": {"B": ["1", "2", "3"], "C": ""}, "D": {"B": "4"}}
    with pytest.raises(BadMessage, match="duplicated <A>"):
        parse_xml(b"<xml><A>1</A><A>2</A></xml>")
