"""Live rooms: pure state machines for who is in a room and what they may do (roles, modes,
floor, lobby, chat, Q&A, polls, calls-to-action), and the live room that drives the SFU."""
