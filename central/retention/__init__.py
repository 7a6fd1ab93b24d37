"""Evidence retention with legal hold: which stored files are due for deletion, holds that pin an
order's files, the sweep that deletes due files (each deletion audited) and its thread.

Each concept is imported by its own path (they depend on central.store and central.audit,
which must not depend on this package's __init__):

    from central.retention.policy import due_files        # the rule: which files are due
    from central.retention.holds import place_hold         # place_hold, release_hold, active_hold, list_holds
    from central.retention.purged import purged_files      # which files were purged, when, why
    from central.retention.sweep import sweep              # one sweep: mark purged, audit, commit, unlink
    from central.retention.sweeper import RetentionSweeper # the sweep on a timer, in a thread

docs/central.md, "Retention and legal hold", states the rule in words.
"""
