"""Mail that comes back: bounces, complaint reports and mailto unsubscribes.

``parse`` reads one message (pure), ``policy`` decides what it means for the
reader (pure), and ``handle`` applies it through the store.
"""
