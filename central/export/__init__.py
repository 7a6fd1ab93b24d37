"""Evidence bundle export: one work order's evidence as a zip anyone can verify offline.

    from central.export import export_order_bundle
    bundle = export_order_bundle(db, "WO-20261126-000001", config=config, store=store,
                                 actor="user:auditor-1", audit=AuditTrail(db), now=time.time(), dest=path)

The format is wire.bundle's (docs/protocol.md, "Evidence bundle"); `garbagewatch verify` reads it.
"""

from central.export.bundle import ExportedBundle, ExportError, export_order_bundle, order_subjects

__all__ = ["ExportError", "ExportedBundle", "export_order_bundle", "order_subjects"]
