"""cosmos"""
