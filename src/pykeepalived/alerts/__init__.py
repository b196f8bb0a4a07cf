"""Mail alerts as keepalived 2.2.7 sends them: who gets one, the texts (message.py), the delivery (smtp.py)."""
