"""leaderboard_build"""
