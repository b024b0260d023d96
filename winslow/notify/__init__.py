"""Notifications: telling a person, by webhook or e-mail, when a project needs one."""
