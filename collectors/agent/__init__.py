"""The focuslake collector service (Linux/X11): system metrics, active window, input counts,
idle/AFK, lock/suspend, network, and the native input capture, written crash-safely to the
landing zone. CLI: `python -m collectors.agent start|stop|status|init-config` (docs/collectors.md).
"""
