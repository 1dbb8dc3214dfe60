"""Every callback_id, block_id and action_id crmbot uses, in one place."""

from __future__ import annotations

from enum import StrEnum


class Modal(StrEnum):
    NEW_LEAD = "new_lead"
    LOG = "log_interaction"
    NEW_DEAL = "new_deal"
    MOVE_DEAL = "move_deal"
    ASSIGN = "assign"
    FOLLOW_UP = "follow_up"
    CONVERT = "convert_lead"
    SETTINGS = "settings"
    LOG_MESSAGE = "log_message"
    RESCHEDULE = "reschedule_follow_up"
    LOG_NEXT = "log_call_next"


class Action(StrEnum):
    SHOW = "show_record"
    LOG_CALL = "log_call"
    FOLLOW_UP = "add_follow_up"
    MOVE = "move_deal"
    ASSIGN = "assign_record"
    CONVERT = "convert_lead"
    DONE = "follow_up_done"
    SNOOZE_HOUR = "snooze_1h"
    SNOOZE_DAY = "snooze_1d"
    SNOOZE_WEEK = "snooze_1w"
    PICK = "pick_candidate"
    HOME_NEW_LEAD = "home_new_lead"
    HOME_LOG = "home_log"
    HOME_NEW_DEAL = "home_new_deal"
    RECORD_PICKER = "record_picker"
    # reminder digests (crmbot/handlers/reminder_actions.py)
    SNOOZE_MONDAY = "snooze_monday"
    RESCHEDULE = "reschedule_follow_up"
    LOG_NEXT = "log_call_next"
    ACKNOWLEDGE = "escalation_ack"
    DIGEST_TIME = "digest_time"
    DIGEST_OFF = "digest_off"
    DIGEST_ON = "digest_on"
    # web-form intake and the duplicate guard (crmbot/handlers/intake.py, duplicates.py)
    CLAIM = "claim_lead"
    ROTATE_INTAKE_TOKEN = "rotate_intake_token"
    INTAKE_CHANNEL = "intake_channel"
    MERGE = "merge_duplicate"
    CREATE_ANYWAY = "create_anyway"
    CONVERT_MERGE = "convert_merge"  # convert a lead into the existing contact
    CONVERT_ANYWAY = "convert_anyway"  # convert into a new contact all the same


class Shortcut(StrEnum):
    LOG_MESSAGE = "log_to_crm"
