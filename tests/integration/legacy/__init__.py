"""Legacy systems stand-ins run as processes of their own by the connector tests."""
