"""Privacy and security: access control, encryption, retention, audit, export and erasure."""
