"""The console's words in Chinese and English: a dict per language, looked up by key.

    t = translator("en")
    t("login.throttled", minutes=3)       # "Too many failed sign-ins: try again in 3 minute(s)."

A key missing from a language falls back to Chinese, then to the key itself (never an error
on a page).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["LANGUAGES", "MESSAGES", "Language", "Translate", "language_of", "size_text", "translator"]

log = logging.getLogger("central.console")

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
Translate = Callable[..., str]

# key: (zh, en)
_PAIRS: dict[str, tuple[str, str]] = {
    "app.name": ("暴露垃圾监管", "garbagewatch"),
    "nav.dashboard": ("总览", "Dashboard"),
    "nav.orders": ("工单", "Work orders"),
    "nav.users": ("用户", "Users"),
    "nav.logout": ("退出", "Sign out"),
    "nav.language": ("语言", "Language"),
    "role.admin": ("管理员", "admin"),
    "role.supervisor": ("督办员", "supervisor"),
    "role.auditor": ("审计员", "auditor"),
    "role.integration": ("系统对接", "integration"),
    # sign-in
    "login.title": ("登录", "Sign in"),
    "login.username": ("用户名", "Username"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.failed": ("用户名或密码错误。", "Wrong username or password."),
    "login.throttled": (
        "登录失败次数过多，请 {minutes} 分钟后再试。",
        "Too many failed sign-ins: try again in {minutes} minute(s).",
    ),
    "login.not_console": (
        "此账号用于系统对接，不能登录控制台。",
        "This account is for a system integration; it cannot sign in to the console.",
    ),
    "login.expired_form": ("登录表单已过期，请重试。", "The sign-in form expired: please try again."),
    "login.signed_out": ("已退出。", "You are signed out."),
    # dashboard
    "dash.title": ("总览", "Dashboard"),
    "dash.open": ("未结工单", "Open orders"),
    "dash.overdue": ("已超时", "Overdue"),
    "dash.due_soon": ("即将到期", "Due soon"),
    "dash.due_soon_hint": ("{hours} 小时内到期", "due within {hours} h"),
    "dash.cameras": ("摄像头", "Cameras"),
    "cam.device": ("设备", "Device"),
    "cam.camera": ("摄像头", "Camera"),
    "cam.site": ("点位", "Site"),
    "cam.state": ("状态", "State"),
    "cam.online": ("在线", "online"),
    "cam.offline": ("离线", "offline"),
    "cam.since": ("状态开始", "Since"),
    "cam.last_seen": ("最后上报", "Last seen"),
    "cam.none": ("还没有摄像头上报。", "No camera has reported yet."),
    # order list
    "orders.title": ("工单", "Work orders"),
    "orders.total": ("共", "Total"),
    "orders.none": ("没有符合条件的工单。", "No work order matches."),
    "filter.status": ("状态", "Status"),
    "filter.any": ("全部", "All"),
    "filter.open": ("未结", "Open"),
    "filter.site": ("点位", "Site"),
    "filter.camera": ("摄像头", "Camera"),
    "filter.date_from": ("开始日期", "From"),
    "filter.date_to": ("结束日期", "To"),
    "filter.overdue": ("仅看超时", "Overdue only"),
    "filter.apply": ("筛选", "Filter"),
    "filter.reset": ("清除", "Clear"),
    "col.id": ("工单号", "Order"),
    "col.status": ("状态", "Status"),
    "col.site": ("点位", "Site"),
    "col.camera": ("摄像头", "Camera"),
    "col.opened": ("立案时间", "Opened"),
    "col.due": ("处置期限", "Deadline"),
    "col.assignee": ("处置人", "Assignee"),
    "page.prev": ("上一页", "Previous"),
    "page.next": ("下一页", "Next"),
    "page.of": ("第 {page} / {pages} 页", "Page {page} of {pages}"),
    # statuses
    "status.reported": ("信息采集", "reported"),
    "status.registered": ("立案", "registered"),
    "status.dispatched": ("已派遣", "dispatched"),
    "status.in_progress": ("处置中", "in progress"),
    "status.resolved": ("处置反馈", "resolved"),
    "status.verified": ("已核查", "verified"),
    "status.closed": ("结案", "closed"),
    "status.rejected": ("误报驳回", "rejected"),
    "status.reopened": ("重新打开", "reopened"),
    "status.open": ("未结（旧）", "open (legacy)"),
    # one order
    "order.title": ("工单 {id}", "Work order {id}"),
    "order.status": ("状态", "Status"),
    "order.place": ("位置", "Place"),
    "order.opened": ("立案时间", "Opened"),
    "order.deadline": ("处置期限", "Deadline"),
    "order.overdue": ("已超时", "overdue"),
    "order.no_deadline": ("无（计时已停止）", "none (the clock is stopped)"),
    "order.assignee": ("处置人", "Assignee"),
    "order.snapshot": ("现场快照（含检测框）", "Snapshot (with the detections)"),
    "order.clip": ("视频片段", "Clip"),
    "order.no_video": ("浏览器无法播放此视频。", "Your browser cannot play this video."),
    "order.after": ("清理后快照", "After: seen clean"),
    "order.evidence": ("证据", "Evidence"),
    "order.role": ("类型", "Kind"),
    "order.size": ("大小", "Size"),
    "order.integrity": ("完整性", "Integrity"),
    "order.missing": ("边缘设备未送达", "dropped by the edge"),
    "order.unsigned": ("人工上传，无设备签名", "uploaded by a person, not signed by a device"),
    "order.photos": ("处置照片", "Resolution photos"),
    "order.purged": ("已于 {day} 按保存期限删除", "purged on {day} (retention)"),
    "order.timeline": ("时间线（审计记录）", "Timeline (audit trail)"),
    "order.notifications": ("已发通知", "Notifications sent"),
    "order.no_notifications": ("尚无通知。", "No notification yet."),
    "order.actions": ("操作", "Actions"),
    "order.no_actions": ("此状态下无可执行的操作。", "No action is possible in this status."),
    "order.read_only": ("审计员只能查看。", "Auditors read; they do not act."),
    "order.export": ("导出证据包", "Export the evidence bundle"),
    "order.audit_chain": ("审计链", "Audit chain"),
    "hold.title": ("法律保全", "Legal hold"),
    "hold.active": ("保全中：{by} 于 {at} 设置", "On hold: placed by {by} at {at}"),
    "hold.none": ("未保全：证据按保存期限处理。", "No hold: the evidence follows the retention period."),
    "hold.place": ("设置法律保全", "Place a legal hold"),
    "hold.release": ("解除法律保全", "Release the legal hold"),
    "integrity.ok": ("sha256 与设备签名均通过验证", "sha256 and the device signature verify"),
    "integrity.failed": ("验证失败：{why}", "does not verify: {why}"),
    "audit.ok": ("审计链完整：{detail}", "audit chain intact: {detail}"),
    "audit.failed": ("审计链已损坏：{detail}", "audit chain broken: {detail}"),
    "audit.unchecked": ("尚无签名检查点，无法完整验证：{detail}", "not fully checked, no signed checkpoint: {detail}"),
    "notif.kind": ("类型", "Kind"),
    "notif.recipient": ("接收人", "Recipient"),
    "notif.channel": ("渠道", "Channel"),
    "notif.status": ("状态", "Status"),
    "notif.sent_at": ("发送时间", "Sent"),
    "notif.attempts": ("尝试次数", "Attempts"),
    # actions
    "act.acknowledge": ("确认接单", "Acknowledge"),
    "act.dispatch": ("派遣 / 改派", "Dispatch or reassign"),
    "act.extend": ("延长期限", "Extend the deadline"),
    "act.resolve": ("处置完成", "Resolve"),
    "act.reject": ("误报驳回", "Reject as a false positive"),
    "field.reason": ("理由", "Reason"),
    "field.assignee": ("处置人", "Assignee"),
    "field.hours": ("延长工作小时数", "Extra working hours"),
    "field.note": ("处置说明", "Note"),
    "field.photo": ("照片（可选，JPEG/PNG/WebP，最大 {size}）", "Photo (optional; JPEG, PNG or WebP, up to {size})"),
    "done.acknowledge": ("已确认。", "Acknowledged."),
    "done.dispatch": ("已派遣。", "Dispatched."),
    "done.extend": ("期限已延长。", "The deadline was extended."),
    "done.resolve": ("已反馈处置完成。", "Resolved."),
    "done.reject": ("已驳回为误报。", "Rejected as a false positive."),
    "done.hold": ("已设置法律保全，证据不会被删除。", "The legal hold was placed: the evidence is kept."),
    "done.hold_release": ("已解除法律保全。", "The legal hold was released."),
    "done.user_added": ("用户已添加。", "The user was added."),
    "done.user_disabled": ("用户已停用，其会话已结束。", "The user was disabled and their sessions ended."),
    "done.user_enabled": ("用户已启用。", "The user was enabled."),
    "done.sites_saved": ("点位已保存。", "The sites were saved."),
    # errors
    "err.title": ("出错了", "Something went wrong"),
    "err.back": ("返回", "Back"),
    "err.not_found": ("未找到。", "Not found."),
    "err.signin_required": ("请先登录。", "Please sign in."),
    "err.forbidden": ("您的角色无权执行此操作。", "Your role may not do this."),
    "err.auditor": ("审计员只能查看，不能操作。", "Auditors read; they do not act."),
    "err.csrf": (
        "表单已过期或无效，请刷新页面后重试。",
        "The form expired or is not valid: reload the page and try again.",
    ),
    "err.origin": ("请求来自其他网站，已拒绝。", "The request came from another site and was refused."),
    "err.reason_required": ("请填写理由。", "A reason is required."),
    "err.assignee_required": ("请填写处置人。", "An assignee is required."),
    "err.hours": (
        "延长的小时数须为 0 到 {max} 之间的数字。",
        "The extra hours must be a number above 0 and up to {max}.",
    ),
    "err.photo_type": ("照片须为 JPEG、PNG 或 WebP 图片。", "The photo must be a JPEG, PNG or WebP image."),
    "err.photo_size": ("照片超过 {size} 上限。", "The photo is larger than the {size} limit."),
    "err.upload_size": ("上传内容超过 {size} 上限。", "The upload is larger than the {size} limit."),
    "err.bad_form": ("表单无效：{what}", "The form is not valid: {what}"),
    "err.bad_filter": ("筛选条件无效：{what}", "Invalid filter: {what}"),
    "err.refused": ("无法执行：{what}", "Not possible: {what}"),
    "err.internal": ("服务器内部错误（已记录）。", "Internal error (logged on the server)."),
    "err.self_disable": ("不能停用自己的账号。", "You cannot disable your own account."),
    "err.export": ("导出失败：{what}", "The export failed: {what}"),
    # admin
    "admin.title": ("用户管理", "Users"),
    "admin.add": ("添加用户", "Add a user"),
    "admin.username": ("用户名", "Username"),
    "admin.role": ("角色", "Role"),
    "admin.sites": ("点位（逗号分隔）", "Sites (comma-separated)"),
    "admin.password": ("初始密码（至少 {n} 位）", "Initial password (at least {n} characters)"),
    "admin.state": ("状态", "State"),
    "admin.disabled": ("已停用", "disabled"),
    "admin.enabled": ("正常", "enabled"),
    "admin.disable": ("停用", "Disable"),
    "admin.enable": ("启用", "Enable"),
    "admin.save_sites": ("保存点位", "Save sites"),
    "admin.all_sites": ("（全部点位）", "(every site)"),
}

MESSAGES: dict[Language, dict[str, str]] = {
    "zh": {k: v[0] for k, v in _PAIRS.items()},
    "en": {k: v[1] for k, v in _PAIRS.items()},
}


def size_text(n: int) -> str:
    """'10 MB', '64 KB': a size limit as people read it (binary units, as the limits are set)."""
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.3g} MB"
    return f"{n / 1024:.3g} KB"


def language_of(value: str | None, default: Language = "zh") -> Language:
    """A supported language from a cookie or parameter value; `default` for anything else."""
    return value if value in LANGUAGES else default


def translator(lang: Language) -> Translate:
    table, fallback = MESSAGES[lang], MESSAGES["zh"]

    def t(key: str, **values: Any) -> str:
        text = table.get(key) or fallback.get(key)
        if text is None:
            log.warning("console: no text for %r", key)
            return key
        try:
            return text.format(**values) if values else text
        except (KeyError, IndexError, ValueError):
            log.warning("console: text %r wants other values than %s", key, sorted(values))
            return text

    return t
