"""The Slack front door: slash commands, case threads, modals and buttons (slack-bolt, async)."""
