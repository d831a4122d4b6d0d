"""seqlab.commands"""
